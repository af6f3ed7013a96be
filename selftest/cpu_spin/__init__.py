"""Spin on the CPU for up to 30 s: the call's deadline must end it."""

import time

import plugbox


@plugbox.export
def attack(ctx):
    print("[spinning for up to 30 s]", flush=True)
    end = time.monotonic() + 30
    n = 0
    while time.monotonic() < end:
        n += 1
    return {"contained": False, "how": f"spun for 30 s ({n} rounds) and was not stopped"}
