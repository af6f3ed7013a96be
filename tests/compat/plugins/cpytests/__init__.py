"""cpytests: runs one of CPython's own test modules inside the worker
(runner.py, which also runs outside any sandbox for comparison), for
tests/compat/cpython_compat.py (`make compat-check`)."""

import plugbox


@plugbox.export
def run(module, skip=()):
    from . import runner
    runner.run(module, skip)
    return module
