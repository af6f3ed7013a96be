"""scribbler: tries to change bytecode caches from inside its worker, its
own (bound read-only into its sandbox) and another plugin's (not there at
all), with Python's open() and with raw system calls through ctypes, so
that no library stands between the attempt and the kernel. The test gives
it a policy that lets these system calls through seccomp: only the mount
tree and Landlock can stop them. Every attempt reports "ok" or the errno's
name."""

import ctypes
import errno
import os

import plugbox

SYS = {"openat": 257, "mkdirat": 258, "unlinkat": 263, "renameat": 264, "fchmodat": 268}
AT_FDCWD = -100


def _errno_name(e):
    return errno.errorcode.get(e, str(e))


def _sys(name, *args):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    conv = [ctypes.c_char_p(a.encode()) if isinstance(a, str) else ctypes.c_long(a) for a in args]
    rc = libc.syscall(ctypes.c_long(SYS[name]), *conv)
    if rc < 0:
        return _errno_name(ctypes.get_errno())
    if name == "openat":
        os.close(rc)
    return "ok"


def _python(fn):
    try:
        fn()
        return "ok"
    except OSError as e:
        return _errno_name(e.errno)


@plugbox.export
def own_pyc():
    """A pyc of this plugin's cache, as this worker sees it."""
    return __spec__.cached


@plugbox.export
def attempt(directory, existing):
    """Try to plant, change, move and delete files in `directory`, whose
    file `existing` is a pyc."""
    planted = os.path.join(directory, "planted.cpython-311.pyc")
    return {
        "python_create": _python(lambda: open(planted, "wb").write(b"x")),
        "python_rewrite": _python(lambda: open(existing, "r+b").write(b"x")),
        "python_makedirs": _python(lambda: os.makedirs(os.path.join(directory, "sub", "dir"))),
        "openat_create": _sys("openat", AT_FDCWD, planted, os.O_WRONLY | os.O_CREAT, 0o644),
        "openat_truncate": _sys("openat", AT_FDCWD, existing, os.O_WRONLY | os.O_TRUNC, 0),
        "openat_append": _sys("openat", AT_FDCWD, existing, os.O_RDWR | os.O_APPEND, 0),
        "mkdirat": _sys("mkdirat", AT_FDCWD, os.path.join(directory, "newdir"), 0o755),
        "unlinkat": _sys("unlinkat", AT_FDCWD, existing, 0),
        "renameat": _sys("renameat", AT_FDCWD, existing, AT_FDCWD, existing + ".moved"),
        "fchmodat": _sys("fchmodat", AT_FDCWD, existing, 0o666),
    }


@plugbox.export
def walk(top):
    """Every file below top, or the errno's name."""
    if not os.path.isdir(top):
        return _errno_name(errno.ENOENT)
    found = []
    for dirpath, _, files in os.walk(top):
        found += [os.path.join(dirpath, f) for f in files]
    return sorted(found)
