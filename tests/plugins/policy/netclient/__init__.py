"""Sends bytes to a TCP listener on 127.0.0.1. The test copies this plugin
as `netok` (whose policy allows outbound TCP) and `netno` (default): the
same code, two policies, one supervisor."""

import socket

import plugbox


@plugbox.export
def send(port, text):
    """Connect to 127.0.0.1:port and send text: {"sent": n}, or the error
    the sandbox gave as {"type": ..., "errno": ...}."""
    print("[about to open a socket]", flush=True)
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    except OSError as e:
        return {"type": type(e).__name__, "errno": e.errno, "step": "socket"}
    try:
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        s.sendall(text.encode())
    except OSError as e:
        return {"type": type(e).__name__, "errno": e.errno, "step": "connect"}
    finally:
        s.close()
    return {"sent": len(text)}
