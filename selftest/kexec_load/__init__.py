"""Load a new kernel with kexec_load. The arguments are invalid on purpose
(1000 segments, an unknown flag): the kernel checks permission first, so
EPERM means stopped and EINVAL means the call would have been allowed."""

import ctypes
import errno

import plugbox

SYS_kexec_load = 246


@plugbox.export
def attack(ctx):
    libc = ctypes.CDLL(None, use_errno=True)
    print("[about to call kexec_load]", flush=True)
    libc.syscall(SYS_kexec_load, 0, 1000, None, 0x8)
    err = ctypes.get_errno()
    return {"contained": err != errno.EINVAL,
            "how": f"kexec_load(1000 segments) -> {errno.errorcode.get(err)}"
                   + (" (the permission check passed)" if err == errno.EINVAL else "")}
