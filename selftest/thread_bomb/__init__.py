"""A thread bomb: start threads until something says no, capped at 2048.
A process limit (or the memory limit, for their stacks) must say no first."""

import threading

import plugbox

CAP = 2048


@plugbox.export
def attack(ctx):
    release = threading.Event()
    threads, error = [], None
    print(f"[about to start up to {CAP} threads]", flush=True)
    try:
        while len(threads) < CAP:
            t = threading.Thread(target=release.wait)
            t.start()
            threads.append(t)
    except (RuntimeError, MemoryError) as e:
        error = f"{type(e).__name__}: {e}"
    finally:
        release.set()
        for t in threads:
            t.join()
    if error:
        return {"contained": True, "how": f"{len(threads)} threads started, then {error}"}
    return {"contained": False, "how": f"started {CAP} threads and nothing stopped it"}
