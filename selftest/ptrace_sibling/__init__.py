"""Attach to the sibling plugin's worker with PTRACE_ATTACH (it stops the
sibling; if it works, wait for the stop and detach again)."""

import ctypes
import errno
import os

import plugbox

SYS_ptrace = 101
PTRACE_ATTACH, PTRACE_DETACH = 16, 17
WALL = 0x40000000


def _ptrace(libc, request, pid):
    return libc.syscall(ctypes.c_long(SYS_ptrace), ctypes.c_long(request), ctypes.c_long(pid),
                        ctypes.c_long(0), ctypes.c_long(0))


@plugbox.export
def attack(ctx):
    pid = ctx["sibling_pid"]
    if pid <= 0:
        return {"contained": False, "how": "the runner did not find the sibling's pid: attempt not made"}
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    print(f"[about to call ptrace(PTRACE_ATTACH, {pid})]", flush=True)
    if _ptrace(libc, PTRACE_ATTACH, pid) < 0:
        return {"contained": True, "how": f"ptrace(PTRACE_ATTACH, {pid}) -> {errno.errorcode.get(ctypes.get_errno())}"}
    os.waitpid(pid, WALL)
    _ptrace(libc, PTRACE_DETACH, pid)
    return {"contained": False, "how": f"ptrace(PTRACE_ATTACH, {pid}): attached to the sibling (detached again)"}
