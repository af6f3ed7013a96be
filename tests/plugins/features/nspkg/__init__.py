"""nspkg: namespace packages that span several directories.

- nspkg itself is extended with pkgutil.extend_path, so nspkg.extra is found
  in deps/nspkg/extra.py although the package lives in the plugin directory;
- ns420 is a PEP 420 namespace (no __init__.py) split over deps/ and vendor/;
- pkgutilns is a pkgutil-style namespace split over deps/ and vendor/."""

__deps_dir__ = ["deps", "vendor"]
__path__ = __import__("pkgutil").extend_path(__path__, __name__)

import importlib
import pkgutil

import plugbox


@plugbox.export
def parts():
    import ns420
    import pkgutilns
    modules = ["nspkg.extra", "ns420.alpha", "ns420.beta", "pkgutilns.one", "pkgutilns.two"]
    return {
        "values": {name: importlib.import_module(name).VALUE for name in modules},
        "ns420_members": sorted(m.name for m in pkgutil.iter_modules(ns420.__path__)),
        "pkgutilns_members": sorted(m.name for m in pkgutil.iter_modules(pkgutilns.__path__)),
    }
