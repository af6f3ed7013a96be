"""ptrace from two frames deep: f() calls g(), which calls ptrace through
ctypes. The violation report must show g above f (most recent call first).
The request (PTRACE_PEEKDATA of address 0 in pid 1) is harmless if it is
ever let through. x86_64 syscall numbers."""

import ctypes

import plugbox

SYS_ptrace = 101
PTRACE_PEEKDATA = 2


def g():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    print("[about to call ptrace]", flush=True)
    rc = libc.syscall(ctypes.c_long(SYS_ptrace), ctypes.c_long(PTRACE_PEEKDATA),
                      ctypes.c_long(1), ctypes.c_long(0), ctypes.c_long(0))
    return {"survived": True, "rc": rc, "errno": ctypes.get_errno()}


@plugbox.export
def f():
    return g()
