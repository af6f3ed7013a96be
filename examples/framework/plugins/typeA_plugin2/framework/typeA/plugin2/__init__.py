"""framework.typeA.plugin2: a typeA plugin whose distribution depends on
requests; `pip install --target` put that dependency (here requests 2.2.0,
a stand-in) next to it, in the same import root.
"""

import requests


def run(context=None):
    print("framework.typeA.plugin2 starting")
    print("framework.typeA.plugin2 finishing")
    return {"plugin": "framework.typeA.plugin2", "framework": (context or {}).get("framework"),
            "requests": requests.__version__}
