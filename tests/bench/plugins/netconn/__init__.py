"""netconn: the bench's connect section (tests/bench/connect.c). The loop
lives in connects.py, which imports nothing of plugbox, so the bench runs
the very same code in a bare python3.11 for the baseline."""

import plugbox

from . import connects


@plugbox.export
def measure(port, n):
    return connects.measure(port, n)
