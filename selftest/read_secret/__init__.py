"""Read a host file outside the plugin with the builtin open(). The runner
made it world-readable, so only the sandbox can keep it out."""

import errno

import plugbox


@plugbox.export
def attack(ctx):
    path = ctx["secret"]
    try:
        with open(path, "rb") as f:
            data = f.read(80)
    except OSError as e:
        return {"contained": True, "how": f"open({path!r}) -> {errno.errorcode.get(e.errno, e.errno)}"}
    return {"contained": False, "how": f"open({path!r}) read {data!r}"}
