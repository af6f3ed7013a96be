"""crowded: its import starts threads up to its policy's @limit processes,
so that its zygote cannot fork a worker (tests/integration/test_zygote.py).
A worker that cannot start them still imports."""

import os
import threading
import time

import plugbox

started = 0
for _ in range(16):
    try:
        threading.Thread(target=lambda: time.sleep(3600), daemon=True).start()
        started += 1
    except RuntimeError:
        break


@plugbox.export
def ping():
    return {"threads_started": started, "pid": os.getpid()}
