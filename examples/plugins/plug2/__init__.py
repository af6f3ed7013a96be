"""plug2 demonstrates a plugin configured by plugin.toml (name, version and
dependency directories) instead of `__deps_dir__`. It vendors requests 2.3.0,
while plug1 vendors 2.2.0.

    plugbox call --plugins examples/plugins plug2 requests_version
"""

import plugbox
import requests


@plugbox.export
def requests_version():
    return requests.__version__


@plugbox.export
def greet(name):
    return f"Hello, {name}! plug2 here, using requests {requests.__version__}."
