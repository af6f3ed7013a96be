"""Attack: join another namespace.
The call is a raw syscall(SYS_setns, ...) made through ctypes.

Expected: the seccomp filter kills the worker; plugbox exits 3 and names the
plugin and the setns syscall. The marker printed just before the call proves
the attempt was made. The arguments are harmless, so that if the call is ever
let through, attack() returns and the test fails showing what happened
instead of doing damage. x86_64 syscall numbers."""

import ctypes

import plugbox

SYS_setns = 308


def _arg(value):
    if value is None or isinstance(value, (bytes, ctypes.Array)):
        return value
    return ctypes.c_long(value)


@plugbox.export
def attack():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    args = [-1, 0]  # an invalid descriptor: EBADF if it ever ran
    print("[about to call setns]", flush=True)
    rc = libc.syscall(ctypes.c_long(SYS_setns), *[_arg(a) for a in args])
    return {"survived": True, "rc": rc, "errno": ctypes.get_errno()}
