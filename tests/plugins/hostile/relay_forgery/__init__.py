"""Attack: write forged frames on every descriptor the worker holds besides
stdin/stdout/stderr (the call channel among them): a length prefix of 4 GiB
and a frame of garbage. The supervisor must neither allocate 4 GiB, crash nor
hang; the call still gets an answer."""

import os

import plugbox


@plugbox.export
def forge():
    written = []
    for fd in range(3, 64):
        for payload in ((0xFFFFFFFF).to_bytes(4, "little"),
                        (8).to_bytes(4, "little") + b"\xff" * 8):
            try:
                os.write(fd, payload)
            except OSError:
                continue
            written.append(fd)
    return sorted(set(written))
