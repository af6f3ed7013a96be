"""spin: a CPU-bound call for the replica figures (tests/bench/warm.c):
spin(n) runs a pure-Python loop of n steps, holding its worker's GIL."""

import plugbox


@plugbox.export
def spin(n):
    total = 0
    for i in range(n):
        total += i * i
    return total & 0xFFFF
