"""good: a well-behaved plugin, called after each attack to show that the
supervisor and other plugins are unaffected."""

import plugbox


@plugbox.export
def ping():
    return "pong"
