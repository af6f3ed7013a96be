"""Write into the plugin's own directory: a new file next to this one, and
rewriting this very file (a plugin that patches itself persists)."""

import errno
import os

import plugbox


@plugbox.export
def attack(ctx):
    here = os.path.dirname(os.path.abspath(__file__))
    how, wrote = [], False
    for path, mode in ((os.path.join(here, "planted.py"), "x"), (os.path.abspath(__file__), "a")):
        try:
            with open(path, mode) as f:
                f.write("")   # opening for writing is the attack; write nothing
        except OSError as e:
            how.append(f"open({path!r}, {mode!r}) -> {errno.errorcode.get(e.errno, e.errno)}")
        else:
            wrote = True
            how.append(f"open({path!r}, {mode!r}) succeeded")
            if mode == "x":
                os.unlink(path)
    return {"contained": not wrote, "how": "; ".join(how)}
