"""plug2: the package layout configured by plugin.toml instead of
__deps_dir__. It vendors requests 2.3.0 (a stand-in) while plug1 vendors
2.2.0.

    plugbox call --plugins examples/framework/plugins plug2 which_requests
"""

import plugbox
import requests


@plugbox.export
def which_requests():
    return {"version": requests.__version__, "file": requests.__file__}
