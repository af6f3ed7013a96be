"""plug1 demonstrates the package layout: the plugin is the package `plug1`,
and `__deps_dir__` names the directory holding its vendored dependencies
(here a stand-in for requests 2.2.0). plug2 vendors requests 2.3.0; each
plugin runs in its own sandboxed worker, so both versions coexist.

    plugbox call --plugins examples/plugins plug1 requests_version
    plugbox call --plugins examples/plugins plug1 greet '"Ada"'
"""

__deps_dir__ = "deps"
__version__ = "1.0.0"

import plugbox
import requests


@plugbox.export
def requests_version():
    return requests.__version__


@plugbox.export
def greet(name):
    return f"Hello, {name}! plug1 here, using requests {requests.__version__}."


@plugbox.export
def greet_loudly(name):
    # A host function: the host decides whether it exists, the operator's
    # policy whether plug1 may call it (examples/policies/plug1.policy).
    return "Hello, " + plugbox.host.shout(name) + "!"
