"""flooder: floods every stream a worker has to the supervisor.

Each function returns at once (or once its flood is written) with how much
it sent, so that a test can measure a sibling plugin meanwhile. The raw Log
envelope skips the glue (and its 16 KiB cap on a record) by writing the
worker's channel itself, descriptor 4 (worker/worker.h), from a thread,
after the call that armed it has returned."""

import os
import sys
import threading
import time

import plugbox

REPLIES = 4


def _varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number, payload):
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _log_frame(message):
    """Envelope{id 0, log: Log{level 30, logger "f", message}} as a frame."""
    log = _varint(1 << 3) + _varint(30) + _field(2, b"f") + _field(3, message)
    payload = _varint(1 << 3) + _varint(0) + _field(8, log)
    return len(payload).to_bytes(4, "little") + payload


def _send(data):
    view = memoryview(data)
    while view:
        view = view[os.write(REPLIES, view):]


@plugbox.export
def log_bomb(size=16 * 1024 * 1024 - 64, count=1, delay=0.2):
    """One (or `count`) Log envelope(s) of `size` newlines, written raw from a
    background thread `delay` seconds after this call returned."""
    frame = _log_frame(b"\n" * size)

    def later():
        time.sleep(delay)
        for _ in range(count):
            _send(frame)
    threading.Thread(target=later, daemon=True).start()
    return len(frame)


@plugbox.export
def stdout_bomb(mib=64, fd=1):
    """`mib` MiB of newlines on stdout (fd 1) or stderr (fd 2), written raw."""
    chunk = b"\n" * (1 << 20)
    for _ in range(mib):
        view = memoryview(chunk)
        while view:
            view = view[os.write(fd, view):]
    return mib


@plugbox.export
def print_lines(n=100000, text="line"):
    """n lines through Python's print (what a chatty plugin does)."""
    for i in range(n):
        print(text, i)
    sys.stdout.flush()
    return n


@plugbox.export
def print_paced(seconds=3.0, per_second=2000, width=1000):
    """Long lines through print() at a steady pace for `seconds`: more bytes
    a second than the meter passes, for little CPU."""
    line = "y" * width
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        for _ in range(per_second // 100):
            print(line)
            n += 1
        sys.stdout.flush()
        time.sleep(0.01)
    return n


@plugbox.export
def spin(seconds=3.0):
    """Burn CPU for `seconds` without a byte of output: what a flood costs the
    machine, without the flood (the tests' baseline)."""
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
    return n


@plugbox.export
def denied_host_calls(n=20000):
    """n calls of a host function its policy does not grant: each is refused
    with PermissionError, and each would be a note in the supervisor's log."""
    refused = 0
    for _ in range(n):
        try:
            plugbox.host_call("not_granted_anywhere")
        except PermissionError:
            refused += 1
    return refused
