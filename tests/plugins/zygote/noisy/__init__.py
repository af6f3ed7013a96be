"""noisy: prints more at import than a pipe holds, in its zygote too
(tests/integration/test_zygote.py)."""

import sys

import plugbox

sys.stdout.write("import-time output " * 20000)
sys.stdout.flush()


@plugbox.export
def ping():
    return "pong"
