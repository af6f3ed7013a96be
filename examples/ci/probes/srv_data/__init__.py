"""An operator's probe: a plugin must not read a host file outside its own
directory. The runner's ctx["secret"] stands for /srv/data: a world-readable
file, so only the sandbox can keep the plugin out."""

import errno

import plugbox


@plugbox.export
def attack(ctx):
    path = ctx["secret"]
    try:
        with open(path, "rb") as f:
            data = f.read(16)
    except OSError as e:
        return {"contained": True, "how": f"open({path!r}) -> {errno.errorcode.get(e.errno, e.errno)}"}
    return {"contained": False, "how": f"open({path!r}) read {data!r}"}
