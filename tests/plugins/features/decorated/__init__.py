"""decorated: exports registered with the built-in plugbox module's decorator,
in both forms, and from a submodule imported by the package."""

import plugbox

from . import extra  # noqa: F401  (registers from_submodule)


@plugbox.export
def plain():
    return "plain"


@plugbox.export(name="renamed")
def _renamed_impl():
    return "renamed"


def not_exported():
    return "reachable only as decorated:not_exported"
