"""Attack: open network sockets (exfiltration, covert channels).
Expected: socket() fails with EACCES in every family, so the plugin sees
PermissionError, and the supervisor logs the denial."""

import errno
import socket

import plugbox

_FAMILIES = [
    ("inet_stream", socket.AF_INET, socket.SOCK_STREAM),
    ("inet_dgram", socket.AF_INET, socket.SOCK_DGRAM),
    ("inet6_stream", socket.AF_INET6, socket.SOCK_STREAM),
    ("unix_stream", socket.AF_UNIX, socket.SOCK_STREAM),
    ("netlink_raw", socket.AF_NETLINK, socket.SOCK_RAW),
]


@plugbox.export
def families():
    """{family: errno, or 0 if a socket was created}"""
    result = {}
    for label, family, kind in _FAMILIES:
        try:
            s = socket.socket(family, kind)
        except OSError as e:
            result[label] = e.errno
        else:
            s.close()
            result[label] = 0
    return result


@plugbox.export
def connect(host, port):
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as e:
        return {"type": type(e).__name__, "errno": e.errno}
    return {"type": None, "errno": 0}


@plugbox.export
def eacces():
    return errno.EACCES
