"""Does its imports and reads its data at module level, as a plugin must
under the strict policy, and opens a file during a call, which strict
forbids once the plugin is imported."""

import os

import plugbox

from . import helper

with open(os.path.join(os.path.dirname(__file__), "data", "greeting.txt"), encoding="utf-8") as _f:
    GREETING = _f.read().strip()


@plugbox.export
def imported():
    """What the import-time code read: the submodule's value and the data file."""
    return {"helper": helper.VALUE, "greeting": GREETING}


@plugbox.export
def read(path):
    """Open a file during the call: {"text": ...} or {"type", "errno"}."""
    print("[about to open a file]", flush=True)
    try:
        with open(path, encoding="utf-8") as f:
            return {"text": f.read()}
    except OSError as e:
        return {"type": type(e).__name__, "errno": e.errno}
