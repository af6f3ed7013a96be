"""plug1: a plugin of the package layout that vendors requests 2.2.0 (a
stand-in) in deps/, named by __deps_dir__. plug2 vendors 2.3.0; each runs in
its own worker, so each sees its own version.

    plugbox call --plugins examples/framework/plugins plug1 which_requests
"""

__deps_dir__ = "deps"
__version__ = "1.0.0"

import plugbox
import requests


@plugbox.export
def which_requests():
    return {"version": requests.__version__, "file": requests.__file__}


@plugbox.export
def ask_host(user_id):
    # plug1's policy grants no host function: the framework's lookup_user
    # exists, but plug1 may not call it.
    try:
        return plugbox.host.lookup_user(user_id)
    except PermissionError as e:
        return f"PermissionError: {e}"
