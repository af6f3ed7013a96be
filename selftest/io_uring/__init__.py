"""Set up an io_uring: its operations run in the kernel without passing
through seccomp, so one ring would bypass the whole filter."""

import ctypes
import errno
import os

import plugbox

SYS_io_uring_setup = 425


@plugbox.export
def attack(ctx):
    libc = ctypes.CDLL(None, use_errno=True)
    params = ctypes.create_string_buffer(120)   # struct io_uring_params, zeroed
    print("[about to call io_uring_setup(4)]", flush=True)
    fd = libc.syscall(SYS_io_uring_setup, 4, params)
    if fd >= 0:
        os.close(fd)
        return {"contained": False, "how": f"io_uring_setup(4) -> ring fd {fd}"}
    return {"contained": True, "how": f"io_uring_setup(4) -> {errno.errorcode.get(ctypes.get_errno())}"}
