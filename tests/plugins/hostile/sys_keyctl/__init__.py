"""Attack: reach the kernel keyrings (other users' credentials).
The call is a raw syscall(SYS_keyctl, ...) made through ctypes.

Expected: the seccomp filter kills the worker; plugbox exits 3 and names the
plugin and the keyctl syscall. The marker printed just before the call proves
the attempt was made. The arguments are harmless, so that if the call is ever
let through, attack() returns and the test fails showing what happened
instead of doing damage. x86_64 syscall numbers."""

import ctypes

import plugbox

SYS_keyctl = 250


def _arg(value):
    if value is None or isinstance(value, (bytes, ctypes.Array)):
        return value
    return ctypes.c_long(value)


@plugbox.export
def attack():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    args = [0, -3, 0]  # KEYCTL_GET_KEYRING_ID of the session keyring, no create
    print("[about to call keyctl]", flush=True)
    rc = libc.syscall(ctypes.c_long(SYS_keyctl), *[_arg(a) for a in args])
    return {"survived": True, "rc": rc, "errno": ctypes.get_errno()}
