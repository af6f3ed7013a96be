"""Make a system call with an x32 number (getpid | 0x40000000): the x32 ABI
shares the x86_64 entry point and architecture tag, so a filter that does
not check the bit would read it as plain getpid."""

import ctypes
import errno

import plugbox

X32_SYSCALL_BIT = 0x40000000
SYS_getpid = 39


@plugbox.export
def attack(ctx):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    print("[about to call syscall(getpid | 0x40000000)]", flush=True)
    rc = libc.syscall(ctypes.c_long(X32_SYSCALL_BIT | SYS_getpid))
    if rc < 0:
        return {"contained": True, "how": f"x32 getpid -> {errno.errorcode.get(ctypes.get_errno())}"}
    return {"contained": False, "how": f"x32 getpid returned {rc}"}
