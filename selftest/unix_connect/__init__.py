"""Connect to a unix socket on the host file system (the way to a D-Bus,
Docker or systemd socket), one the runner listens on."""

import errno
import socket

import plugbox


@plugbox.export
def attack(ctx):
    path = ctx["unix_path"]
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    except OSError as e:
        return {"contained": True, "how": f"socket(AF_UNIX) -> {errno.errorcode.get(e.errno, e)}"}
    with s:
        try:
            s.connect(path)
        except OSError as e:
            return {"contained": True, "how": f"connect({path!r}) -> {errno.errorcode.get(e.errno, e)}"}
    return {"contained": False, "how": f"connected to {path!r}"}
