"""Load a kernel module with init_module (an empty image: the kernel checks
CAP_SYS_MODULE first, so EPERM means stopped; anything else means the
image itself was looked at)."""

import ctypes
import errno

import plugbox

SYS_init_module = 175


@plugbox.export
def attack(ctx):
    libc = ctypes.CDLL(None, use_errno=True)
    print("[about to call init_module]", flush=True)
    rc = libc.syscall(SYS_init_module, None, 0, b"")
    err = ctypes.get_errno()
    if rc < 0 and err == errno.EPERM:
        return {"contained": True, "how": "init_module(empty image) -> EPERM"}
    return {"contained": False, "how": f"init_module(empty image) passed the permission check: rc {rc}, "
                                       f"{errno.errorcode.get(err)}"}
