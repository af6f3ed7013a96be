"""Attacks on the SIGSYS reporter itself: replace its handler, or block
SIGSYS, then do what the policy kills. Either way the worker must die
rather than go on; the marker printed before each step proves it ran.
x86_64 syscall numbers."""

import ctypes
import signal

import plugbox

SYS_ptrace = 101


def _ptrace():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc.syscall(ctypes.c_long(SYS_ptrace), ctypes.c_long(2), ctypes.c_long(1),
                        ctypes.c_long(0), ctypes.c_long(0))


@plugbox.export
def replace_handler():
    print("[about to replace the SIGSYS handler]", flush=True)
    signal.signal(signal.SIGSYS, signal.SIG_IGN)
    print("[replaced the SIGSYS handler]", flush=True)
    rc = _ptrace()
    return {"survived": True, "rc": rc}


@plugbox.export
def block_then_ptrace():
    print("[about to block SIGSYS]", flush=True)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGSYS})
    blocked = signal.SIGSYS in signal.pthread_sigmask(signal.SIG_BLOCK, set())
    print(f"[SIGSYS blocked: {blocked}; about to call ptrace]", flush=True)
    rc = _ptrace()
    return {"survived": True, "rc": rc, "ctypes_errno": ctypes.get_errno()}
