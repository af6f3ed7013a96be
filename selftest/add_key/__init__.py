"""Add a key to a kernel keyring (keyrings are shared across processes of a
user and a long-standing source of kernel bugs)."""

import ctypes
import errno

import plugbox

SYS_add_key = 248
KEY_SPEC_PROCESS_KEYRING = -2


@plugbox.export
def attack(ctx):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    print("[about to call add_key('user', 'plugbox-selftest')]", flush=True)
    serial = libc.syscall(ctypes.c_long(SYS_add_key), b"user", b"plugbox-selftest", b"x",
                          ctypes.c_long(1), ctypes.c_long(KEY_SPEC_PROCESS_KEYRING))
    outcome = f"key {serial}" if serial >= 0 else errno.errorcode.get(ctypes.get_errno())
    return {"contained": serial < 0, "how": f"add_key('user', 'plugbox-selftest') -> {outcome}"}
