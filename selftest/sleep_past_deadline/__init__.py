"""Sleep for 30 s, far past the call's deadline: the supervisor must end
the call (a worker that never answers must not hang its caller)."""

import time

import plugbox


@plugbox.export
def attack(ctx):
    print("[sleeping for 30 s]", flush=True)
    time.sleep(30)
    return {"contained": False, "how": "slept 30 s and the call was not ended"}
