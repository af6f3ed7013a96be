"""Attack: get memory that is both writable and executable (run injected
machine code), or an anonymous in-memory file (memfd: shared memory and
fileless code loading)."""

import mmap
import os

import plugbox


def _attempt(action):
    try:
        action()
    except OSError as e:
        return {"type": type(e).__name__, "errno": e.errno}
    return {"type": None, "errno": 0}


@plugbox.export
def mmap_rwx():
    prot = mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC
    return _attempt(lambda: mmap.mmap(-1, 4096, prot=prot).close())


@plugbox.export
def mmap_rw():
    # The control: ordinary writable memory must work.
    prot = mmap.PROT_READ | mmap.PROT_WRITE
    return _attempt(lambda: mmap.mmap(-1, 4096, prot=prot).close())


@plugbox.export
def memfd():
    return _attempt(lambda: os.close(os.memfd_create("plugbox-test")))
