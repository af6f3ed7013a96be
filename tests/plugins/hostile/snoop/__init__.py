"""Attack: read files the plugin has no business reading (another plugin's
code, the host's secrets, other processes' environments)."""

import plugbox


@plugbox.export
def read(path):
    try:
        with open(path, "rb") as f:
            data = f.read(65536)
    except OSError as e:
        return {"type": type(e).__name__, "errno": e.errno, "data": None}
    return {"type": None, "errno": 0, "data": data.decode("utf-8", "replace")}


@plugbox.export
def parent_environ():
    import os
    return read(f"/proc/{os.getppid()}/environ")
