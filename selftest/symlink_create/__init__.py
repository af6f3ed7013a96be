"""Make new symlinks to host files, in the plugin's own directory and in
the writable directory, then read through them."""

import errno
import os

import plugbox


@plugbox.export
def attack(ctx):
    here = os.path.dirname(os.path.abspath(__file__))
    how, escaped = [], False
    for target, link in (("/etc/passwd", os.path.join(here, "made_link")),
                         (ctx["secret"], os.path.join(ctx["write_dir"], "made_link"))):
        try:
            os.symlink(target, link)
        except OSError as e:
            how.append(f"symlink({target!r}, {link!r}) -> {errno.errorcode.get(e.errno, e.errno)}")
            continue
        escaped = True
        try:
            with open(link, "rb") as f:
                how.append(f"symlink({target!r}, {link!r}) made; read {f.read(40)!r}")
        except OSError as e:
            how.append(f"symlink({target!r}, {link!r}) made; open -> {errno.errorcode.get(e.errno, e.errno)}")
        os.unlink(link)
    return {"contained": not escaped, "how": "; ".join(how)}
