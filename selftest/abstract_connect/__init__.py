"""Connect to an abstract unix socket (no file, so file-system rules do not
see it; only a network namespace or Landlock scoping does), one the runner
listens on."""

import errno
import socket

import plugbox


@plugbox.export
def attack(ctx):
    name = "\0" + ctx["abstract_name"]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(name)
    except OSError as e:
        return {"contained": True, "how": f"connect(abstract {name[1:]!r}) -> {errno.errorcode.get(e.errno, e)}"}
    return {"contained": False, "how": f"connected to abstract {name[1:]!r}"}
