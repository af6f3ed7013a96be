"""Create a userfaultfd (it lets an exploit pause the kernel in the middle
of a copy from user memory: the classic race-widening tool)."""

import ctypes
import errno
import os

import plugbox

SYS_userfaultfd = 323


@plugbox.export
def attack(ctx):
    libc = ctypes.CDLL(None, use_errno=True)
    print("[about to call userfaultfd(O_CLOEXEC)]", flush=True)
    fd = libc.syscall(SYS_userfaultfd, os.O_CLOEXEC | os.O_NONBLOCK)
    err = ctypes.get_errno()
    if fd >= 0:
        os.close(fd)
    return {"contained": fd < 0,
            "how": f"userfaultfd(O_CLOEXEC) -> {errno.errorcode.get(err) if fd < 0 else f'fd {fd}'}"}
