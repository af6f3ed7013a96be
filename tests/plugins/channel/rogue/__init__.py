"""rogue: a plugin that writes its worker's channel itself, behind the glue.

Descriptor 4 carries frames to the supervisor (worker/worker.h), descriptor
3 brings them in. Each function makes one kind of hostile traffic and then,
where the supervisor must notice something on its own (a stall), waits to
be ended. Nothing here may return normally except stop_reading, whose
attack starts only with the next call, hello, and answer_twice. The frames are encoded by hand: the
worker has no protobuf module, and a hostile plugin would not use one."""

import os
import time

import plugbox

REPLIES, CALLS = 4, 3


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
    """A length-delimited field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _envelope(call_id, body_field, body):
    return _varint(1 << 3) + _varint(call_id) + _field(body_field, body)


def _frame(payload):
    return len(payload).to_bytes(4, "little") + payload


def _send(data):
    while data:
        data = data[os.write(REPLIES, data):]


def _wait_to_be_ended():
    time.sleep(600)
    return "the supervisor did not end this worker"


@plugbox.export
def garbage():
    _send(_frame(b"\xff" * 64))
    return _wait_to_be_ended()


@plugbox.export
def huge_length():
    _send(b"\xff\xff\xff\xff")
    return _wait_to_be_ended()


@plugbox.export
def length_then_nothing():
    _send((1000).to_bytes(4, "little") + b"x" * 10)
    return _wait_to_be_ended()


@plugbox.export
def flood(seconds=3.0):
    """A thousand tiny frames (Log records, legal in every state) every millisecond."""
    record = _frame(_envelope(0, 8, _varint(1 << 3) + _varint(30) + _field(2, b"r") + _field(3, b"x")))
    batch = record * 1000
    end = time.monotonic() + seconds
    tick = time.monotonic()
    while time.monotonic() < end:
        _send(batch)
        tick += 0.001
        pause = tick - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    return _wait_to_be_ended()


@plugbox.export
def deep(depth=100000):
    """A Result whose Value is a list in a list ... depth times. Built from
    the inside out by lengths, not by copying ever larger byte strings."""
    inner = _varint(3 << 3) + _varint(2)          # Value{int_value: 1}
    prefixes = []
    size = len(inner)
    for _ in range(depth):
        items = _varint(1 << 3 | 2) + _varint(size)           # ValueList.items
        value = _varint(7 << 3 | 2) + _varint(size + len(items))  # Value.list_value
        prefixes.append(value + items)
        size += len(items) + len(value)
    value = b"".join(reversed(prefixes)) + inner
    _send(_frame(_envelope(1, 4, _field(1, value))))
    return _wait_to_be_ended()


@plugbox.export
def unknown_result():
    """An answer to a call that was never made."""
    _send(_frame(_envelope(4242424242, 4, _field(1, _varint(3 << 3) + _varint(2)))))
    return _wait_to_be_ended()


@plugbox.export
def second_hello():
    hello = _varint(1 << 3) + _varint(1) + _field(2, __name__.encode())
    _send(_frame(_envelope(0, 2, hello)))
    return _wait_to_be_ended()


_kept = []


@plugbox.export
def stop_reading():
    """Point the worker's input at a pipe nobody writes, keeping the real
    channel open: the worker reads on, but never a byte the supervisor
    sends. This call's answer still goes out; the next call never arrives."""
    real = os.dup(CALLS)
    empty, writer = os.pipe()
    os.dup2(empty, CALLS)
    _kept.extend([real, empty, writer])
    return "deaf from now on"


@plugbox.export
def hello():
    return "hi"


@plugbox.export
def answer_as(call_id):
    """A Result for call `call_id` (the host knows the ids), another call
    pipelined behind this one: an answer out of order."""
    _send(_frame(_envelope(call_id, 4, _field(1, _varint(3 << 3) + _varint(2)))))
    return _wait_to_be_ended()


@plugbox.export
def answer_twice(call_id):
    """A Result for this very call (`call_id`), then the glue's own."""
    _send(_frame(_envelope(call_id, 4, _field(1, _varint(3 << 3) + _varint(2)))))
    return "answered twice"
