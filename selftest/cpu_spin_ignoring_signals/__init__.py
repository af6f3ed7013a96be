"""Spin for up to 30 s after ignoring every signal a plugin may ignore
(SIGTERM, SIGINT, SIGHUP, SIGXCPU...): only SIGKILL can end it then."""

import signal
import time

import plugbox

IGNORED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGXCPU, signal.SIGALRM,
           signal.SIGUSR1, signal.SIGUSR2)


@plugbox.export
def attack(ctx):
    for sig in IGNORED:
        signal.signal(sig, signal.SIG_IGN)
    print(f"[ignoring {len(IGNORED)} signals, spinning for up to 30 s]", flush=True)
    end = time.monotonic() + 30
    while time.monotonic() < end:
        pass
    return {"contained": False, "how": "spun for 30 s with signals ignored and was not stopped"}
