"""Raise every capability with capset (effective, permitted, inheritable:
all bits set). With all sets empty there is nothing to raise from."""

import ctypes
import errno

import plugbox

SYS_capset = 126
LINUX_CAPABILITY_VERSION_3 = 0x20080522


@plugbox.export
def attack(ctx):
    libc = ctypes.CDLL(None, use_errno=True)
    header = (ctypes.c_uint32 * 2)(LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)(*[0xffffffff] * 6)
    print("[about to call capset(all capabilities)]", flush=True)
    if libc.syscall(SYS_capset, header, data) < 0:
        return {"contained": True, "how": f"capset(all) -> {errno.errorcode.get(ctypes.get_errno())}"}
    return {"contained": False, "how": "capset(all) succeeded: every capability raised"}
