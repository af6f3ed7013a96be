"""Write to read-only executable memory through /proc/self/mem (the kernel
writes past page protections there: code injection without a writable and
executable mapping). The byte written is the one already there."""

import ctypes
import errno
import os

import plugbox


@plugbox.export
def attack(ctx):
    libc = ctypes.CDLL(None)
    code = ctypes.cast(libc.getpid, ctypes.c_void_p).value   # libc's text: mapped r-x
    try:
        fd = os.open("/proc/self/mem", os.O_RDWR)
    except OSError as e:
        return {"contained": True, "how": f"open('/proc/self/mem', O_RDWR) -> {errno.errorcode.get(e.errno, e.errno)}"}
    try:
        os.lseek(fd, code, os.SEEK_SET)
        same = os.read(fd, 1)
        os.lseek(fd, code, os.SEEK_SET)
        os.write(fd, same)
    except OSError as e:
        return {"contained": True, "how": f"/proc/self/mem opened; writing libc's text -> {errno.errorcode.get(e.errno, e.errno)}"}
    finally:
        os.close(fd)
    return {"contained": False, "how": f"wrote {same!r} over libc's read-only code at {code:#x} via /proc/self/mem"}
