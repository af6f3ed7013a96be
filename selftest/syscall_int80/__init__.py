"""Make a 32-bit system call through the i386 entry point (int 0x80): a
filter that checks only x86_64 numbers would read it as another syscall.
The code (int80.bin: mov eax, 20 (i386 getpid); int 0x80; ret) is mapped
from the plugin's own file, read-only and executable, as a C extension is."""

import ctypes
import errno
import mmap
import os

import plugbox


@plugbox.export
def attack(ctx):
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "int80.bin")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    fd = os.open(path, os.O_RDONLY)
    addr = libc.mmap(None, 4096, mmap.PROT_READ | mmap.PROT_EXEC, mmap.MAP_PRIVATE, fd, 0)
    os.close(fd)
    if addr in (None, ctypes.c_void_p(-1).value):
        return {"contained": True, "how": f"mapping int80.bin executable -> {errno.errorcode.get(ctypes.get_errno())}"}
    print("[about to run int 0x80 with eax=20 (i386 getpid)]", flush=True)
    rc = ctypes.CFUNCTYPE(ctypes.c_int)(addr)()
    if rc < 0:
        return {"contained": True, "how": f"int 0x80 getpid -> {errno.errorcode.get(-rc, rc)}"}
    return {"contained": False, "how": f"int 0x80 getpid returned {rc}: the i386 entry point answered"}
