"""Read the supervisor's memory directly with process_vm_readv, at the
address of a marker the runner put there for this purpose."""

import ctypes
import errno

import plugbox

SYS_process_vm_readv = 310


class Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


@plugbox.export
def attack(ctx):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    size = ctx["marker_len"]
    buf = ctypes.create_string_buffer(size)
    local = Iovec(ctypes.cast(buf, ctypes.c_void_p), size)
    remote = Iovec(ctx["marker_addr"], size)
    pid = ctx["supervisor_pid"]
    print(f"[about to call process_vm_readv({pid}, {ctx['marker_addr']:#x})]", flush=True)
    n = libc.syscall(ctypes.c_long(SYS_process_vm_readv), ctypes.c_long(pid), ctypes.byref(local),
                     ctypes.c_long(1), ctypes.byref(remote), ctypes.c_long(1), ctypes.c_long(0))
    if n < 0:
        return {"contained": True, "how": f"process_vm_readv({pid}) -> {errno.errorcode.get(ctypes.get_errno())}"}
    return {"contained": False, "how": f"process_vm_readv({pid}) read {buf.raw[:n]!r}"}
