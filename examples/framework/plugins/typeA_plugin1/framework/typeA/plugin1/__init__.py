"""framework.typeA.plugin1: a typeA plugin as the entry-point pattern writes
it, installed the way `pip install --target` leaves a distribution (the path
layout): its *.dist-info/entry_points.txt says

    [typeA]
    plugin = framework.typeA.plugin1:run
"""


def run(context=None):
    print("framework.typeA.plugin1 starting")
    print("framework.typeA.plugin1 finishing")
    return {"plugin": "framework.typeA.plugin1", "framework": (context or {}).get("framework")}
