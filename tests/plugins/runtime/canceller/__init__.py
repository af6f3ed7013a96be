"""canceller: calls for cancellation tests. It keeps a record of what ran
(the worker lives on when it stops a cancelled call, so the record does
too), sleeps, and stops a cancel in the ways a plugin can: swallowing
plugbox.Cancelled, or blocking the signal that carries it."""

import logging
import os
import signal
import threading
import time

import plugbox

ran = []
# which worker this is (a pid would not say: each is pid 1 of its namespace)
_incarnation = os.urandom(8).hex()


@plugbox.export
def sleep(seconds, tag=None):
    """Note that it ran, then sleep; notes "stopped TAG" when cancelled. A
    log record says it sleeps (a test waits for it before cancelling)."""
    ran.append(tag)
    try:
        # inside the try: a cancel may come as soon as the record is out
        logging.getLogger("canceller").info("sleeping %s", tag)
        time.sleep(seconds)
    except plugbox.Cancelled:
        ran.append(f"stopped {tag}")
        raise
    return seconds


@plugbox.export
def mark(tag):
    """Only notes that it ran (the side effect a queued call must not have)."""
    ran.append(tag)
    return tag


@plugbox.export
def seen():
    return list(ran)


@plugbox.export
def incarnation():
    return _incarnation


@plugbox.export
def swallow(seconds):
    """`except BaseException: pass` around a sleep, in a loop: the cancel is
    swallowed every time."""
    logging.getLogger("canceller").info("sleeping")
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            time.sleep(0.05)
        except BaseException:
            pass
    return "finished"


@plugbox.export
def block_signals(seconds):
    """Block every signal it may (the cancel's included), then sleep."""
    signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    logging.getLogger("canceller").info("sleeping")
    time.sleep(seconds)
    return "slept"


@plugbox.export
def signal_itself():
    """Send the cancel signal to itself every way the sandbox lets it: a
    signal without plugbox's id (SI_TKILL) cancels nothing."""
    sig = signal.SIGRTMIN + 3
    signal.raise_signal(sig)
    signal.pthread_kill(threading.get_ident(), sig)
    os.kill(os.getpid(), sig)
    time.sleep(0.1)
    return "alive"
