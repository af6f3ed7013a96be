"""Make new user and mount namespaces with unshare (root in a new user
namespace reaches kernel code that needs CAP_SYS_ADMIN)."""

import ctypes
import errno
import os

import plugbox

SYS_unshare = 272
CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000   # os has them from Python 3.12


@plugbox.export
def attack(ctx):
    libc = ctypes.CDLL(None, use_errno=True)
    flags = CLONE_NEWUSER | CLONE_NEWNS
    print("[about to call unshare(CLONE_NEWUSER | CLONE_NEWNS)]", flush=True)
    if libc.syscall(SYS_unshare, flags) < 0:
        return {"contained": True, "how": f"unshare(CLONE_NEWUSER|CLONE_NEWNS) -> {errno.errorcode.get(ctypes.get_errno())}"}
    return {"contained": False, "how": f"unshare(CLONE_NEWUSER|CLONE_NEWNS) succeeded, uid now {os.getuid()}"}
