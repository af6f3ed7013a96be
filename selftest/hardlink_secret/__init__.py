"""Hard-link the host's secret into the writable directory (a second name
that outlives any permission change on the first)."""

import errno
import os

import plugbox


@plugbox.export
def attack(ctx):
    target = os.path.join(ctx["write_dir"], "secret-link")
    try:
        os.link(ctx["secret"], target)
    except OSError as e:
        return {"contained": True, "how": f"link({ctx['secret']!r}, {target!r}) -> {errno.errorcode.get(e.errno, e.errno)}"}
    return {"contained": False, "how": f"link({ctx['secret']!r}, {target!r}) succeeded"}
