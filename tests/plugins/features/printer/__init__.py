"""printer: a plugin writing to its stdout and stderr, which plugbox must
attribute to it ("[printer] ..." on plugbox's stderr) and keep out of the
result on plugbox's stdout."""

import os
import sys

import plugbox

print("printer imported")


@plugbox.export
def say(text):
    print(text)
    print("err: " + text, file=sys.stderr)
    return "done"


@plugbox.export
def raw_fd_write(text):
    # Bypasses sys.stdout: straight to file descriptor 1.
    os.write(1, (text + "\n").encode())
    return "done"


@plugbox.export
def flood(lines, width):
    line = "y" * width
    for i in range(lines):
        print(f"{i:08d} {line}")
    return lines


# Streams that hold output until flushed: the worker must flush them before
# it answers (calls.c skips the flush only for a stream that cannot hold
# anything, its own write-through stdout over an unbuffered file).
_kept = []


@plugbox.export
def say_held(text, how):
    import io
    if how == "reconfigured":
        sys.stdout.reconfigure(write_through=False)
    elif how == "buffered":
        # write-through text over a *buffered* writer: the bytes wait there
        stream = io.TextIOWrapper(io.BufferedWriter(sys.__stdout__.buffer), write_through=True)
        _kept.append(stream)  # never collected: that would close fd 1
        sys.stdout = stream
    print(text)
    return "done"
