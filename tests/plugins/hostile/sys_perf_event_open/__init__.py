"""Attack: open a perf event (kernel attack surface, side channels).
The call is a raw syscall(SYS_perf_event_open, ...) made through ctypes.

Expected: the seccomp filter kills the worker; plugbox exits 3 and names the
plugin and the perf_event_open syscall. The marker printed just before the call proves
the attempt was made. The arguments are harmless, so that if the call is ever
let through, attack() returns and the test fails showing what happened
instead of doing damage. x86_64 syscall numbers."""

import ctypes

import plugbox

SYS_perf_event_open = 298


def _arg(value):
    if value is None or isinstance(value, (bytes, ctypes.Array)):
        return value
    return ctypes.c_long(value)


@plugbox.export
def attack():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    args = [None, 0, -1, -1, 0]  # no attr: EFAULT if it ever ran
    print("[about to call perf_event_open]", flush=True)
    rc = libc.syscall(ctypes.c_long(SYS_perf_event_open), *[_arg(a) for a in args])
    return {"survived": True, "rc": rc, "errno": ctypes.get_errno()}
