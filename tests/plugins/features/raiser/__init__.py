"""raiser: plugin code that raises, to check how exceptions are reported."""

import plugbox

from . import errors


@plugbox.export
def fail(message):
    raise ValueError(message)


@plugbox.export
def custom():
    errors.deep_failure()


@plugbox.export
def key_error():
    return {}["missing"]
