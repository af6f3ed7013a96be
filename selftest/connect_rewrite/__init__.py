"""Under `@network connect` to one listener of the runner, connect 300 times
with a sockaddr that another thread flips between the allowed port and the
forbidden one (the time-of-check to time-of-use race of checking an address
and then letting the kernel read it again)."""

import ctypes
import errno
import socket
import struct
import threading

import plugbox


@plugbox.export
def attack(ctx):
    ok, bad = ctx["connect_port"], ctx["tcp_port"]
    libc = ctypes.CDLL(None, use_errno=True)
    addr = ctypes.create_string_buffer(16)
    good = struct.pack("=H", socket.AF_INET) + struct.pack("!H4s8x", ok, socket.inet_aton("127.0.0.1"))
    evil = struct.pack("=H", socket.AF_INET) + struct.pack("!H4s8x", bad, socket.inet_aton("127.0.0.1"))
    ctypes.memmove(addr, good, 16)
    stop = threading.Event()

    def flip():
        while not stop.is_set():
            ctypes.memmove(addr, evil, 16)
            ctypes.memmove(addr, good, 16)

    t = threading.Thread(target=flip)
    t.start()
    counts = {"allowed": 0, "refused": 0, "forbidden": 0, "other": 0}
    try:
        for _ in range(300):
            with socket.socket() as s:
                if libc.connect(s.fileno(), addr, 16) == 0:
                    counts["forbidden" if s.getpeername()[1] == bad else "allowed"] += 1
                elif ctypes.get_errno() == errno.ECONNREFUSED:
                    counts["refused"] += 1
                else:
                    counts["other"] += 1
    finally:
        stop.set()
        t.join()
    how = ", ".join(f"{v} {k}" for k, v in counts.items())
    return {"contained": counts["forbidden"] == 0, "how": f"300 connects while a thread flips the port: {how}"}
