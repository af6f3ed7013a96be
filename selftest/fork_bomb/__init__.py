"""A fork bomb with raw clone(SIGCHLD) system calls: up to 256 children,
each of which exits at once (the bomb is bounded; the attempt is real)."""

import ctypes
import errno
import signal

import plugbox

SYS_clone = 56
SYS_exit_group = 231
ATTEMPTS = 256


@plugbox.export
def attack(ctx):
    # PyDLL keeps the GIL across the call, so a child returns into Python
    # holding it and can run the next line, which ends it.
    libc = ctypes.PyDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    made, first_error = 0, None
    print(f"[about to call clone(SIGCHLD) {ATTEMPTS} times]", flush=True)
    for _ in range(ATTEMPTS):
        pid = libc.syscall(ctypes.c_long(SYS_clone), ctypes.c_long(signal.SIGCHLD), ctypes.c_long(0),
                           ctypes.c_long(0), ctypes.c_long(0), ctypes.c_long(0))
        if pid == 0:
            libc.syscall(ctypes.c_long(SYS_exit_group), ctypes.c_long(0))
        if pid < 0:
            first_error = errno.errorcode.get(ctypes.get_errno(), "?")
            break
        made += 1
    if made == 0:
        return {"contained": True, "how": f"clone(SIGCHLD) -> {first_error}"}
    return {"contained": False, "how": f"clone(SIGCHLD) made {made} processes, then {first_error or 'stopped at the cap'}"}
