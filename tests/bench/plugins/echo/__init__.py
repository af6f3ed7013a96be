"""echo: the bench's trivial plugin (tests/bench). The bench copies it
under many names; echo(x) returns x, so a call costs only plugbox itself."""

import plugbox


@plugbox.export
def echo(x):
    return x
