"""brokenimport: its top-level code raises, so every call fails with the
exception (and listing it must not need to import it)."""

import plugbox


@plugbox.export
def never_reached():
    return "unreachable"


raise RuntimeError("broken at import")
