"""psutil about its own process (needs the worker's private /proc)."""
__deps_dir__ = "deps"

import plugbox


@plugbox.export
def run():
    import os
    import threading
    import psutil
    me = psutil.Process()
    started = threading.Event()
    stop = threading.Event()

    def idle():
        started.set()
        stop.wait(10)
    t = threading.Thread(target=idle)
    t.start()
    started.wait(10)
    try:
        threads = me.num_threads()
    finally:
        stop.set()
        t.join()
    return {
        "pid_matches": me.pid == os.getpid(),
        "rss_positive": me.memory_info().rss > 0,
        "threads": threads,
        "cpu_user_nonnegative": me.cpu_times().user >= 0,
        "name": me.name(),
        "status": me.status(),
    }
