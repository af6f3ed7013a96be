"""Plant something in a world-writable host directory: a file, a directory
and a FIFO. The runner also checks the directory is still empty."""

import errno
import os

import plugbox


def _create_file(path):
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))


@plugbox.export
def attack(ctx):
    base = ctx["write_dir"]
    results, made = [], []
    for label, make in (("creat", _create_file), ("mkdir", os.mkdir), ("mkfifo", os.mkfifo)):
        path = os.path.join(base, "planted-" + label)
        try:
            make(path)
        except OSError as e:
            results.append(f"{label}({path!r}) -> {errno.errorcode.get(e.errno, e.errno)}")
        else:
            made.append(path)
            results.append(f"{label}({path!r}) succeeded")
    return {"contained": not made, "how": "; ".join(results)}
