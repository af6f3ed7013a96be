"""plug2 (seed scenario): the same as plug1, but its dependency directory is
declared in plugin.toml instead of __deps_dir__, and it vendors a different
requests (2.3.0) that must not collide with plug1's 2.2.0."""

import plugbox
import requests


@plugbox.export
def requests_version():
    return requests.__version__
