"""Pillow: draw, resize, encode to PNG in memory and decode it again."""
__deps_dir__ = "deps"

import plugbox


@plugbox.export
def run():
    import io
    from PIL import Image, ImageDraw
    img = Image.new("RGB", (200, 100), (255, 0, 0))
    ImageDraw.Draw(img).rectangle([100, 0, 199, 99], fill=(0, 0, 255))
    small = img.resize((20, 10), Image.BILINEAR)
    buf = io.BytesIO()
    small.save(buf, format="PNG")
    data = buf.getvalue()
    back = Image.open(io.BytesIO(data))
    back.load()
    return {
        "signature": data[:8].hex(),
        "size": list(back.size),
        "mode": back.mode,
        "left": list(back.getpixel((2, 5))),
        "right": list(back.getpixel((17, 5))),
    }
