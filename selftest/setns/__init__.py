"""Join the supervisor's network namespace with setns (through its
/proc/PID/ns/net when that opens, else on descriptor 0)."""

import ctypes
import errno
import os

import plugbox

SYS_setns = 308
CLONE_NEWNET = 0x40000000


@plugbox.export
def attack(ctx):
    path = f"/proc/{ctx['supervisor_pid']}/ns/net"
    try:
        fd, what = os.open(path, os.O_RDONLY), path
    except OSError as e:
        fd, what = 0, f"fd 0 (open {path} -> {errno.errorcode.get(e.errno, e.errno)})"
    libc = ctypes.CDLL(None, use_errno=True)
    print(f"[about to call setns({what})]", flush=True)
    rc = libc.syscall(SYS_setns, fd, CLONE_NEWNET)
    err = ctypes.get_errno()
    if fd:
        os.close(fd)
    if rc < 0:
        return {"contained": True, "how": f"setns({what}, CLONE_NEWNET) -> {errno.errorcode.get(err)}"}
    return {"contained": False, "how": f"setns({what}, CLONE_NEWNET) joined the supervisor's network"}
