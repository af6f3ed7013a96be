"""isolated: a plugin without dependencies, to check that the host's
site-packages and sibling plugins are out of reach."""

import importlib.util

import plugbox


@plugbox.export
def load_yaml():
    # PyYAML is installed on the host (/usr/lib/python3/dist-packages) but not
    # in this plugin: the import must fail.
    import yaml
    return yaml.__version__


@plugbox.export
def probe(names):
    """For each top-level module name: can this plugin import it?"""
    found = {}
    for name in names:
        try:
            found[name] = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found[name] = False
    return found
