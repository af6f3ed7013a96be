"""A plugin that needs the network: `plugbox learn` runs needs_net and
prints the policy it needs beyond default. other_family asks for something
needs_net never did (an IPv6 socket)."""

import array
import fcntl
import socket
import termios

import plugbox


@plugbox.export
def needs_net(port, text):
    """Connect to 127.0.0.1:port, send text, and ask the socket how much is
    still unsent (ioctl TIOCOUTQ, which default does not allow)."""
    print("[about to connect]", flush=True)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        s.sendall(text.encode())
        buf = array.array("i", [0])
        fcntl.ioctl(s.fileno(), termios.TIOCOUTQ, buf, True)
        return {"sent": len(text), "unsent": buf[0]}
    finally:
        s.close()


@plugbox.export
def other_family():
    print("[about to open an IPv6 socket]", flush=True)
    try:
        socket.socket(socket.AF_INET6, socket.SOCK_STREAM).close()
    except OSError as e:
        return {"type": type(e).__name__, "errno": e.errno}
    return {"type": None, "errno": 0}
