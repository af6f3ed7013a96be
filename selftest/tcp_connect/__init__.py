"""Connect to a TCP port on the host's loopback, where the runner listens
(and notices any connection that arrives)."""

import errno
import socket

import plugbox


@plugbox.export
def attack(ctx):
    addr = ("127.0.0.1", ctx["tcp_port"])
    try:
        with socket.create_connection(addr, timeout=2) as s:
            s.sendall(b"plugbox-selftest\n")
    except OSError as e:
        return {"contained": True, "how": f"connect({addr}) -> {errno.errorcode.get(e.errno, e)}"}
    return {"contained": False, "how": f"connected to {addr} and sent 17 bytes"}
