"""sysheavy: a syscall-heavy plugin for the bench's seccomp section
(tests/bench). The loops live in loops.py, which imports nothing of
plugbox, so the bench runs the very same code in a bare python3.11."""

import plugbox

from . import loops


@plugbox.export
def echo(x):
    return x


@plugbox.export
def measure(n, reps):
    return loops.measure(n, reps)
