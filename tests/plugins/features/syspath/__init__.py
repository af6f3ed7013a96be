"""syspath: reports the import path and environment the worker gave it.

Two dependency directories, as a list literal in __deps_dir__."""

__deps_dir__ = ["deps", "vendor"]

import os
import sys

import plugbox


@plugbox.export
def info():
    return {
        "sys_path": list(sys.path),
        "first_entry_listing": sorted(os.listdir(sys.path[0])),
        "environ": dict(os.environ),
        "dep_modules": [_where("depmod_a"), _where("depmod_b")],
    }


def _where(name):
    module = __import__(name)
    return [module.ORIGIN, os.path.dirname(module.__file__)]
