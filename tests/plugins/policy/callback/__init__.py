"""A ctypes callback through libc's qsort: Python called back from C. libffi
makes the callback's trampoline in writable and executable memory, which
default allows and strict refuses (MemoryError). ctypes is imported at
module level, so the call itself opens no file (strict forbids that)."""

import ctypes

import plugbox

LIBC = ctypes.CDLL("libc.so.6")
CMP = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int))


@plugbox.export
def qsort(values):
    """values sorted by libc's qsort, comparing through a Python callback."""
    seen = []

    def compare(a, b):
        seen.append(1)
        return a[0] - b[0]

    try:
        callback = CMP(compare)
    except MemoryError:
        return "MemoryError"
    array = (ctypes.c_int * len(values))(*values)
    LIBC.qsort(array, len(values), ctypes.sizeof(ctypes.c_int), callback)
    return {"sorted": list(array), "callbacks": len(seen) > 0}
