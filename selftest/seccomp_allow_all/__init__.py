"""Add an allow-everything seccomp filter with seccomp(2), then make a call
the policy kills (ptrace PEEKDATA of pid 1, harmless if it ever ran).
Filters only stack, so the kill must still come: the worker dies."""

import ctypes
import errno

import plugbox

SYS_seccomp = 317
SYS_ptrace = 101
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_RET_ALLOW = 0x7fff0000


class SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]


@plugbox.export
def attack(ctx):
    libc = ctypes.CDLL(None, use_errno=True)
    allow = (SockFilter * 1)(SockFilter(0x06, 0, 0, SECCOMP_RET_ALLOW))   # BPF_RET | BPF_K
    prog = SockFprog(1, allow)
    rc = libc.syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, ctypes.byref(prog))
    added = "added" if rc == 0 else errno.errorcode.get(ctypes.get_errno())
    print(f"[seccomp(SET_MODE_FILTER, allow-all) -> {added}; about to call ptrace]", flush=True)
    rc = libc.syscall(SYS_ptrace, 2, 1, 0, 0)
    return {"contained": False, "how": f"seccomp(allow-all) -> {added}; then ptrace was not killed (-> {rc})"}
