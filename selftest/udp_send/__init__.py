"""Send a UDP datagram to the runner's loopback port (a covert channel needs
no connection)."""

import errno
import socket

import plugbox


@plugbox.export
def attack(ctx):
    addr = ("127.0.0.1", ctx["udp_port"])
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    except OSError as e:
        return {"contained": True, "how": f"socket(AF_INET, SOCK_DGRAM) -> {errno.errorcode.get(e.errno, e)}"}
    with s:
        try:
            sent = s.sendto(b"plugbox-selftest", addr)
        except OSError as e:
            return {"contained": True, "how": f"sendto({addr}) -> {errno.errorcode.get(e.errno, e)}"}
    return {"contained": False, "how": f"sendto({addr}) sent {sent} bytes"}
