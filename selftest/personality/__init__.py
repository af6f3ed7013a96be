"""Switch the execution domain to READ_IMPLIES_EXEC (every readable mapping
becomes executable: a way around the no-writable-and-executable rule)."""

import ctypes
import errno

import plugbox

SYS_personality = 135
READ_IMPLIES_EXEC = 0x0400000
QUERY = 0xffffffff


@plugbox.export
def attack(ctx):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    print("[about to call personality]", flush=True)
    old = libc.syscall(ctypes.c_long(SYS_personality), ctypes.c_long(QUERY))
    if old < 0:
        return {"contained": True, "how": f"personality(query) -> {errno.errorcode.get(ctypes.get_errno())}"}
    rc = libc.syscall(ctypes.c_long(SYS_personality), ctypes.c_long(old | READ_IMPLIES_EXEC))
    now = libc.syscall(ctypes.c_long(SYS_personality), ctypes.c_long(QUERY))
    libc.syscall(ctypes.c_long(SYS_personality), ctypes.c_long(old))
    return {"contained": rc < 0 or not now & READ_IMPLIES_EXEC,
            "how": f"personality({old:#x} | READ_IMPLIES_EXEC) -> {rc}, persona now {now:#x}"}
