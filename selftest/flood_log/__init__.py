"""One Log record of 16 MiB of newlines, written raw to the worker's
channel (descriptor 4), past the glue's 16 KiB cap on a record. Contained
when the runner sees the supervisor turn it into a bounded number of lines
and a "dropped" note, quickly (probes.txt: output)."""

import os

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


@plugbox.export
def attack(ctx):
    log = _varint(1 << 3) + _varint(30) + _field(2, b"flood") + _field(3, b"\n" * (16 * 1024 * 1024 - 64))
    payload = _varint(1 << 3) + _varint(0) + _field(8, log)
    view = memoryview(len(payload).to_bytes(4, "little") + payload)
    while view:
        view = view[os.write(REPLIES, view):]
    return {"contained": True, "how": f"wrote a Log record of {len(payload)} bytes of newlines"}
