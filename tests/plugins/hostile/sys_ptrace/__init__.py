"""Attack: attach to the supervisor with ptrace (read its memory, inject code).
The call is a raw syscall(SYS_ptrace, ...) made through ctypes.

Expected: the seccomp filter kills the worker; plugbox exits 3 and names the
plugin and the ptrace syscall. The marker printed just before the call proves
the attempt was made. The arguments are harmless, so that if the call is ever
let through, attack() returns and the test fails showing what happened
instead of doing damage. x86_64 syscall numbers."""

import ctypes
import os

import plugbox

SYS_ptrace = 101


def _arg(value):
    if value is None or isinstance(value, (bytes, ctypes.Array)):
        return value
    return ctypes.c_long(value)


@plugbox.export
def attack():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    args = [0x4206, os.getppid(), 0, 0]  # PTRACE_SEIZE the parent: unlike PTRACE_ATTACH it does not stop it
    print("[about to call ptrace]", flush=True)
    rc = libc.syscall(ctypes.c_long(SYS_ptrace), *[_arg(a) for a in args])
    return {"survived": True, "rc": rc, "errno": ctypes.get_errno()}
