"""Under `@network connect` to one listener of the runner, reach the other:
by its address, its IPv4-mapped IPv6 form, another 127.0.0.x, TCP Fast Open
(sendto with an address), a second connect of a connected socket, UDP.
The allowed listener is connected first, so the mechanism is known to be on."""

import errno
import socket

import plugbox


def _name(e):
    return errno.errorcode.get(e.errno, str(e))


@plugbox.export
def attack(ctx):
    ok, bad = ctx["connect_port"], ctx["tcp_port"]
    how, reached = [], False
    try:
        socket.create_connection(("127.0.0.1", ok), timeout=5).close()
        how.append(f"allowed 127.0.0.1:{ok} connected")
    except OSError as e:
        how.append(f"allowed 127.0.0.1:{ok} -> {_name(e)} (the mechanism is off?)")
    tries = [("127.0.0.1", socket.AF_INET), ("::ffff:127.0.0.1", socket.AF_INET6), ("127.0.0.2", socket.AF_INET)]
    for host, fam in tries:
        try:
            with socket.socket(fam, socket.SOCK_STREAM) as s:
                s.settimeout(5)
                s.connect((host, bad))
            reached = True
            how.append(f"{host}:{bad} connected")
        except OSError as e:
            how.append(f"{host}:{bad} -> {_name(e)}")
    for label, attempt in (
            ("sendto(MSG_FASTOPEN)", lambda: socket.socket().sendto(b"x", socket.MSG_FASTOPEN, ("127.0.0.1", bad))),
            ("second connect", lambda: socket.create_connection(("127.0.0.1", ok), timeout=5).connect(("127.0.0.1", bad))),
            ("UDP", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", ctx["udp_port"])))):
        try:
            attempt()
            reached = True
            how.append(f"{label} went through")
        except OSError as e:
            how.append(f"{label} -> {_name(e)}")
    return {"contained": not reached, "how": "; ".join(how)}
