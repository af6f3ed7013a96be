"""64 MiB of newlines on stdout and 16 MiB on stderr: 80 million lines.
Contained when the runner sees a bounded number of lines and a "dropped"
note, quickly (probes.txt: output)."""

import os

import plugbox


def _write(fd, mib):
    chunk = b"\n" * (1 << 20)
    for _ in range(mib):
        view = memoryview(chunk)
        while view:
            view = view[os.write(fd, view):]


@plugbox.export
def attack(ctx):
    _write(1, 64)
    _write(2, 16)
    return {"contained": True, "how": "wrote 64 MiB of newlines on stdout and 16 MiB on stderr"}
