"""Open a rtnetlink socket and ask the kernel for its links (netlink is a
large kernel attack surface and reveals the host's network)."""

import errno
import socket
import struct

import plugbox

RTM_GETLINK = 18
NLM_F_REQUEST, NLM_F_DUMP = 1, 0x300


@plugbox.export
def attack(ctx):
    try:
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    except OSError as e:
        return {"contained": True, "how": f"socket(AF_NETLINK, NETLINK_ROUTE) -> {errno.errorcode.get(e.errno, e)}"}
    with s:
        s.settimeout(2)
        # nlmsghdr + ifinfomsg: dump every link
        msg = struct.pack("=IHHII", 32, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + bytes(16)
        try:
            s.send(msg)
            reply = s.recv(65536)
        except OSError as e:
            return {"contained": False, "how": f"netlink socket opened; the dump -> {errno.errorcode.get(e.errno, e)}"}
    return {"contained": False, "how": f"netlink socket opened; RTM_GETLINK answered {len(reply)} bytes"}
