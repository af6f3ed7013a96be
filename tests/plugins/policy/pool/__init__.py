"""pool: a pool of threads that all run at once, as a server plugin's
worker pool or CPython's test_queue (100 threads) does; with a cap, how a
thread bomb ends."""

import threading

import plugbox


@plugbox.export
def start(n):
    """Start n threads that wait together; {"alive": how many ran at once,
    "error": what stopped the rest, or None}."""
    release = threading.Event()
    threads, error = [], None
    try:
        for _ in range(n):
            t = threading.Thread(target=release.wait)
            t.start()
            threads.append(t)
    except (RuntimeError, MemoryError) as e:
        error = f"{type(e).__name__}: {e}"
    alive = sum(t.is_alive() for t in threads)
    release.set()
    for t in threads:
        t.join()
    return {"alive": alive, "error": error}
