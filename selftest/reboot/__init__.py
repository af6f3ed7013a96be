"""Reboot the machine. The second magic number is wrong on purpose: the
kernel checks CAP_SYS_BOOT first, so EPERM means stopped and EINVAL means
the reboot would have happened."""

import ctypes
import errno

import plugbox

SYS_reboot = 169
LINUX_REBOOT_MAGIC1 = 0xfee1dead


@plugbox.export
def attack(ctx):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    print("[about to call reboot]", flush=True)
    libc.syscall(ctypes.c_long(SYS_reboot), ctypes.c_long(LINUX_REBOOT_MAGIC1), ctypes.c_long(0),
                 ctypes.c_long(0), None)
    name = errno.errorcode.get(ctypes.get_errno())
    return {"contained": name != "EINVAL", "how": f"reboot(MAGIC1, bad MAGIC2) -> {name}"}
