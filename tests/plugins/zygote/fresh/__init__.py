"""fresh: keeps a secret in a module global and in a file of its scratch
directory, to show that @fresh-per-call leaves neither to the next call
(tests/integration/test_zygote.py)."""

import os
import tempfile

import plugbox

_secret = None


def _scratch_file():
    # /tmp, or /var/tmp when the plugin itself lives under /tmp (a build
    # tree there, as in CI): tempfile finds the writable one.
    return os.path.join(tempfile.gettempdir(), "secret")


@plugbox.export
def remember(secret):
    global _secret
    _secret = secret
    with open(_scratch_file(), "w") as f:
        f.write(secret)
    return os.getpid()


@plugbox.export
def recall():
    found = None
    if os.path.exists(_scratch_file()):
        with open(_scratch_file()) as f:
            found = f.read()
    return {"global": _secret, "file": found}
