"""Open a perf event (a software CPU clock on this process): the perf
subsystem is a large kernel attack surface and a side channel."""

import ctypes
import errno
import os

import plugbox

SYS_perf_event_open = 298
PERF_TYPE_SOFTWARE = 1


class PerfEventAttr(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32), ("size", ctypes.c_uint32), ("config", ctypes.c_uint64),
                ("rest", ctypes.c_char * 112)]


@plugbox.export
def attack(ctx):
    libc = ctypes.CDLL(None, use_errno=True)
    attr = PerfEventAttr(PERF_TYPE_SOFTWARE, ctypes.sizeof(PerfEventAttr), 0)
    print("[about to call perf_event_open(PERF_TYPE_SOFTWARE)]", flush=True)
    fd = libc.syscall(SYS_perf_event_open, ctypes.byref(attr), 0, -1, -1, 0)
    if fd < 0:
        return {"contained": True, "how": f"perf_event_open(software clock) -> {errno.errorcode.get(ctypes.get_errno())}"}
    os.close(fd)
    return {"contained": False, "how": f"perf_event_open(software clock) -> fd {fd}"}
