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
