"""prefilter: ships files that CPython runs during start-up if they are on the
import path too early (deps/encodings/, deps/sitecustomize.py,
deps/usercustomize.py, deps/apport_python_hook.py, deps/zz_prefilter.pth).
Had any of them run before the seccomp filter, it could do anything; here
each one only tries to leave a marker file in a directory the test passes in
(the test writes that path into the copies) and prints a marker line.

This module's own code is ordinary: ping() must keep working."""

__deps_dir__ = "deps"

import sys

import encodings

import plugbox


@plugbox.export
def ping():
    return {
        "answer": "pong",
        "encodings_file": encodings.__file__,
        "loaded": sorted(name for name in ("sitecustomize", "usercustomize", "apport_python_hook")
                         if name in sys.modules),
    }
