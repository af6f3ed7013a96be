"""The kill list, attempted for real: one function per way in. Each prints
a marker, then makes the call raw (through ctypes, or machine code for the
i386 entry point), so the policy's verdict is the only thing between the
attempt and the kernel. The arguments are harmless (bad descriptors, NULL
pointers, queries), so that a call let through returns an error the test
shows instead of doing damage. x86_64 only.

tests/integration/test_kill_list.py runs every function under the shipped
default policy, and under `plugbox learn`."""

import ctypes
import errno
import mmap

import plugbox

SYS_clone, SYS_unshare, SYS_clone3 = 56, 272, 435
CLONE_NEWUSER, CLONE_NEWNET, CLONE_NEWNS = 0x10000000, 0x40000000, 0x00020000
SIGCHLD = 17
X32_BIT = 0x40000000


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def _raw(nr, *args):
    ctypes.set_errno(0)
    rc = _libc().syscall(ctypes.c_long(nr), *[a if a is None or isinstance(a, ctypes._SimpleCData)
                                               or isinstance(a, ctypes.Array) else ctypes.c_long(a)
                                               for a in args])
    return {"survived": True, "rc": rc, "errno": errno.errorcode.get(ctypes.get_errno()) if rc == -1 else None}


@plugbox.export
def syscall(name, nr, args):
    """syscall(nr, *args) for the syscall `name` (the marker names it)."""
    print(f"[about to call {name}]", flush=True)
    return _raw(nr, *args)


@plugbox.export
def x32(nr):
    """Syscall nr through the x32 ABI (nr | 0x40000000)."""
    print("[about to call through the x32 ABI]", flush=True)
    return _raw(nr | X32_BIT)


@plugbox.export
def int80():
    """getpid through the i386 entry point: mov eax, 20; int 0x80; ret, in
    anonymous writable and executable memory (which default allows)."""
    code = b"\xb8\x14\x00\x00\x00\xcd\x80\xc3"
    mem = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    mem[:len(code)] = code
    addr = ctypes.addressof(ctypes.c_char.from_buffer(mem))
    print("[about to run int 0x80]", flush=True)
    rc = ctypes.CFUNCTYPE(ctypes.c_int)(addr)()
    return {"survived": True, "rc": rc}


@plugbox.export
def clone_namespaces():
    """A child process in new user and network namespaces (raw clone)."""
    print("[about to call clone]", flush=True)
    rc = _libc().syscall(ctypes.c_long(SYS_clone), ctypes.c_long(CLONE_NEWUSER | CLONE_NEWNET | SIGCHLD),
                         None, None, None, ctypes.c_long(0))
    if rc == 0:
        _libc()._exit(0)   # the child, had it been made
    return {"survived": True, "rc": rc, "errno": errno.errorcode.get(ctypes.get_errno()) if rc == -1 else None}


@plugbox.export
def clone3_namespaces():
    """The same through clone3, whose flags (in memory) no filter can see."""
    args = (ctypes.c_uint64 * 11)()
    args[0] = CLONE_NEWUSER | CLONE_NEWNET   # flags
    args[4] = SIGCHLD                        # exit_signal
    print("[about to call clone3]", flush=True)
    rc = _libc().syscall(ctypes.c_long(SYS_clone3), args, ctypes.c_long(ctypes.sizeof(args)))
    if rc == 0:
        _libc()._exit(0)
    return {"survived": True, "rc": rc, "errno": errno.errorcode.get(ctypes.get_errno()) if rc == -1 else None}


@plugbox.export
def unshare_namespaces():
    """New user and network namespaces for the worker itself."""
    print("[about to call unshare]", flush=True)
    return _raw(SYS_unshare, CLONE_NEWUSER | CLONE_NEWNET)


@plugbox.export
def tiocsti():
    """Type a character into the terminal on descriptor 0 (TIOCSTI)."""
    print("[about to call ioctl TIOCSTI]", flush=True)
    return _raw(16, 0, 0x5412, ctypes.c_char_p(b"x"))
