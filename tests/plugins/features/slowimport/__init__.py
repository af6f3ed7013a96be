"""slowimport: plugin code that is still running, at import, when the test
looks at its worker from outside (/proc/PID/status on the host)."""

import sys
import time

import plugbox

print("importing", flush=True)
time.sleep(3)


@plugbox.export
def ping():
    return "pong"
