"""Terminal escapes on stdout, stderr and in a log record: ESC sequences
(clear the screen, set the window title), the 8-bit CSI U+009B, a
right-to-left override. Contained when no control character reaches the
runner's output function (probes.txt: output)."""

import logging
import sys

import plugbox

EVIL = "\x1b[2J\x1b]0;owned\x07\u009b31m\u202eevil\r"


@plugbox.export
def attack(ctx):
    print("stdout " + EVIL)
    print("stderr " + EVIL, file=sys.stderr)
    logging.getLogger("selftest\x1b[1m").warning("log " + EVIL)
    sys.stdout.flush()
    sys.stderr.flush()
    return {"contained": True, "how": "printed ESC, C1 CSI and RLO on stdout, stderr and in a log record"}
