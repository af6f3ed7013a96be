"""Open raw sockets: IP (forge packets) and packet (sniff the wire)."""

import errno
import socket

import plugbox

ETH_P_ALL = 3


@plugbox.export
def attack(ctx):
    how, opened = [], False
    for label, args in (("AF_INET, SOCK_RAW, IPPROTO_ICMP", (socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)),
                        ("AF_PACKET, SOCK_RAW", (socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)))):
        try:
            socket.socket(*args).close()
        except OSError as e:
            how.append(f"socket({label}) -> {errno.errorcode.get(e.errno, e)}")
        else:
            opened = True
            how.append(f"socket({label}) opened")
    return {"contained": not opened, "how": "; ".join(how)}
