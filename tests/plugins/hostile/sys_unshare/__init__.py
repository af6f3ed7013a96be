"""Attack: enter a new user namespace (gain capabilities inside it).
The call is a raw syscall(SYS_unshare, ...) made through ctypes.

Expected: the seccomp filter kills the worker; plugbox exits 3 and names the
plugin and the unshare syscall. The marker printed just before the call proves
the attempt was made. The arguments are harmless, so that if the call is ever
let through, attack() returns and the test fails showing what happened
instead of doing damage. x86_64 syscall numbers."""

import ctypes

import plugbox

SYS_unshare = 272


def _arg(value):
    if value is None or isinstance(value, (bytes, ctypes.Array)):
        return value
    return ctypes.c_long(value)


@plugbox.export
def attack():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    args = [0x10000000]  # CLONE_NEWUSER
    print("[about to call unshare]", flush=True)
    rc = libc.syscall(ctypes.c_long(SYS_unshare), *[_arg(a) for a in args])
    return {"survived": True, "rc": rc, "errno": ctypes.get_errno()}
