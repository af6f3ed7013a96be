"""Change the root directory with chroot (with a descriptor kept outside,
the classic way out of a chroot)."""

import errno
import os

import plugbox


@plugbox.export
def attack(ctx):
    here = os.path.dirname(os.path.abspath(__file__))
    print(f"[about to call chroot({here!r})]", flush=True)
    try:
        os.chroot(here)
    except OSError as e:
        return {"contained": True, "how": f"chroot({here!r}) -> {errno.errorcode.get(e.errno, e.errno)}"}
    return {"contained": False, "how": f"chroot({here!r}) succeeded"}
