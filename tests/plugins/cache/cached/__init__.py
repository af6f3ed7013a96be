"""cached: vendors a small library (deps/vendlib) and reports, from inside
its worker, how each module it imports was loaded: compiled from source
(an audit "compile" event for the file) or from a pyc, and where the pyc
is (module.__spec__.cached). The audit hook is installed first, so every
import after this module's own is seen."""

__deps_dir__ = "deps"

import os
import sys

import plugbox

COMPILED = []


def _audit(event, args):
    if event == "compile" and len(args) > 1 and isinstance(args[1], str):
        COMPILED.append(args[1])


sys.addaudithook(_audit)


@plugbox.export
def probe(*modules):
    """Import each module; say how it was loaded and what it holds."""
    import importlib
    seen = len(COMPILED)
    loaded = {}
    for name in modules:
        module = importlib.import_module(name)
        cached = module.__spec__.cached
        loaded[name] = {
            "file": module.__file__,
            "cached": cached,
            "pyc_exists": bool(cached) and os.path.exists(cached),
            "value": getattr(module, "VALUE", None),
        }
    return {"compiled": COMPILED[seen:], "modules": loaded, "own_cached": __spec__.cached}


@plugbox.export
def listdir(path):
    try:
        return sorted(os.listdir(path))
    except OSError as e:
        return {"errno": e.errno, "error": os.strerror(e.errno)}


@plugbox.export
def read(path):
    try:
        with open(path, "rb") as f:
            return {"bytes": len(f.read())}
    except OSError as e:
        return {"errno": e.errno, "error": os.strerror(e.errno)}
