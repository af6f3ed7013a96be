"""victim: a valid plugin whose deps/ the escape_* plugins try to borrow."""

__deps_dir__ = "deps"

import plugbox
import victimdep


@plugbox.export
def secret():
    return victimdep.SECRET
