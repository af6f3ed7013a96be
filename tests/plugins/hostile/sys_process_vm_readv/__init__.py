"""Attack: read the supervisor's memory directly.
The call is a raw syscall(SYS_process_vm_readv, ...) made through ctypes.

Expected: the seccomp filter kills the worker; plugbox exits 3 and names the
plugin and the process_vm_readv syscall. The marker printed just before the call proves
the attempt was made. The arguments are harmless, so that if the call is ever
let through, attack() returns and the test fails showing what happened
instead of doing damage. x86_64 syscall numbers."""

import ctypes
import os

import plugbox

SYS_process_vm_readv = 310


def _arg(value):
    if value is None or isinstance(value, (bytes, ctypes.Array)):
        return value
    return ctypes.c_long(value)


@plugbox.export
def attack():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    args = [os.getppid(), None, 0, None, 0, 0]  # zero iovecs: reads nothing if it ever ran
    print("[about to call process_vm_readv]", flush=True)
    rc = libc.syscall(ctypes.c_long(SYS_process_vm_readv), *[_arg(a) for a in args])
    return {"survived": True, "rc": rc, "errno": ctypes.get_errno()}
