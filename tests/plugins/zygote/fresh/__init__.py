"""fresh: keeps a secret in a module global and in a file of its scratch
directory, to show that @fresh-per-call leaves neither to the next call
(tests/integration/test_zygote.py)."""

import os

import plugbox

_secret = None
SCRATCH = "/tmp/secret"


@plugbox.export
def remember(secret):
    global _secret
    _secret = secret
    with open(SCRATCH, "w") as f:
        f.write(secret)
    return os.getpid()


@plugbox.export
def recall():
    found = None
    if os.path.exists(SCRATCH):
        with open(SCRATCH) as f:
            found = f.read()
    return {"global": _secret, "file": found}
