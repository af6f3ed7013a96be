"""plug1 (seed scenario): a package-layout plugin whose vendored dependencies
live in deps/, named by the __deps_dir__ literal below (plugbox reads it from
the source text, it never executes this file to find it)."""

__deps_dir__ = "deps"
__version__ = "0.1.0"

import plugbox
import requests


@plugbox.export
def requests_version():
    return requests.__version__
