"""stalled: an import that hangs for 15 s in its zygote, and only there
(tests/integration/test_zygote.py): the supervisor gives the zygote up
and exec's the plugin's workers, whose import is quick."""

import os
import time

import plugbox

with open("/proc/self/cmdline", "rb") as f:
    if b"--zygote" in f.read().split(b"\0"):
        time.sleep(15)


@plugbox.export
def ping():
    return {"pid": os.getpid()}
