"""escaper: plugin text with terminal escapes in it, for every place the
supervisor shows a plugin's words: output lines, log records, the type,
message and traceback of an exception, and (plugin.toml) the version that
`plugbox list` prints. ESC sequences (a screen clear, a window title), the
8-bit CSI U+009B, a right-to-left override and newlines that would forge
lines of their own."""

import logging
import sys

import plugbox

EVIL = "\x1b[2J\x1b]0;owned\x07\u009b31m\u202eevil\nplugbox: plugin 'steady': forged line"


@plugbox.export
def output():
    print("stdout:" + EVIL)
    print("stderr:" + EVIL, file=sys.stderr)
    logging.getLogger("esc\x1b[1m").warning("log:" + EVIL)
    sys.stdout.flush()
    sys.stderr.flush()
    return "printed"


@plugbox.export
def throw():
    # The type's name, the message and a traceback line (the code's file
    # name) all carry the escapes.
    cls = type("Evil\x1b[31m\u009bType", (Exception,), {})
    code = compile("raise cls(msg)", "evil\x1b[2J\u009b.py", "exec")
    exec(code, {"cls": cls, "msg": "message:" + EVIL})
