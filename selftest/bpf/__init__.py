"""Create an eBPF map (the first step of loading eBPF programs into the
kernel, a favourite of kernel exploits)."""

import ctypes
import errno
import os

import plugbox

SYS_bpf = 321
BPF_MAP_CREATE = 0
BPF_MAP_TYPE_ARRAY = 2


class MapAttr(ctypes.Structure):
    _fields_ = [("map_type", ctypes.c_uint32), ("key_size", ctypes.c_uint32),
                ("value_size", ctypes.c_uint32), ("max_entries", ctypes.c_uint32),
                ("rest", ctypes.c_char * 112)]


@plugbox.export
def attack(ctx):
    libc = ctypes.CDLL(None, use_errno=True)
    attr = MapAttr(BPF_MAP_TYPE_ARRAY, 4, 8, 1)
    print("[about to call bpf(BPF_MAP_CREATE)]", flush=True)
    fd = libc.syscall(SYS_bpf, BPF_MAP_CREATE, ctypes.byref(attr), ctypes.sizeof(attr))
    if fd < 0:
        return {"contained": True, "how": f"bpf(BPF_MAP_CREATE) -> {errno.errorcode.get(ctypes.get_errno())}"}
    os.close(fd)
    return {"contained": False, "how": f"bpf(BPF_MAP_CREATE) -> map fd {fd}"}
