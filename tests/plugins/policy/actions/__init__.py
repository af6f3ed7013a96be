"""One syscall per function, made raw through ctypes, so the policy's
verdict reaches the caller unchanged: {"rc": return value, "errno": errno}.
The tests give this plugin a small policy per action (tests/policies/action-*).
x86_64 syscall numbers."""

import ctypes

import plugbox

SYS_getppid = 110
SYS_getcpu = 309


def _raw(nr, *args):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    ctypes.set_errno(0)
    rc = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    return {"rc": rc, "errno": ctypes.get_errno() if rc == -1 else 0}


@plugbox.export
def getppid():
    """getppid(2): what the shipped policy allows."""
    print("[about to call getppid]", flush=True)
    return _raw(SYS_getppid)


@plugbox.export
def getcpu():
    """getcpu(2): harmless, and named by no shipped policy, so @default decides."""
    print("[about to call getcpu]", flush=True)
    return _raw(SYS_getcpu, 0, 0, 0)


@plugbox.export
def getcpu_many(n=200):
    """getcpu n times: each refused (ENOSYS) and reported; the call goes on."""
    results = [_raw(SYS_getcpu, 0, 0, 0) for _ in range(n)]
    return {"calls": len(results), "enosys": sum(r["errno"] == 38 for r in results)}
