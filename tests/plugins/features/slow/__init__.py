"""slow: calls that never finish in time, for --timeout."""

import signal
import time

import plugbox


@plugbox.export
def sleep(seconds):
    time.sleep(seconds)
    return seconds


@plugbox.export
def spin_ignoring_sigterm():
    # A plugin controls its own signal handlers: only SIGKILL stops this.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        pass
