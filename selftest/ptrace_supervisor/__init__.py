"""Attach to the supervisor with ptrace (then read its memory, inject
code). PTRACE_SEIZE, unlike PTRACE_ATTACH, does not stop it if it works."""

import ctypes
import errno

import plugbox

SYS_ptrace = 101
PTRACE_SEIZE = 0x4206


@plugbox.export
def attack(ctx):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    pid = ctx["supervisor_pid"]
    print(f"[about to call ptrace(PTRACE_SEIZE, {pid})]", flush=True)
    rc = libc.syscall(ctypes.c_long(SYS_ptrace), ctypes.c_long(PTRACE_SEIZE), ctypes.c_long(pid),
                      ctypes.c_long(0), ctypes.c_long(0))
    if rc < 0:
        return {"contained": True, "how": f"ptrace(PTRACE_SEIZE, {pid}) -> {errno.errorcode.get(ctypes.get_errno())}"}
    return {"contained": False, "how": f"ptrace(PTRACE_SEIZE, {pid}): attached to the supervisor"}
