"""nspath (path layout): namespace packages spanning the plugin directory
(the import root) and its deps/ directory, declared in plugin.toml."""

import importlib
import pkgutil


def parts():
    import ns420
    import pkgutilns
    modules = ["ns420.alpha", "ns420.beta", "pkgutilns.one", "pkgutilns.two"]
    return {
        "values": {name: importlib.import_module(name).VALUE for name in modules},
        "ns420_members": sorted(m.name for m in pkgutil.iter_modules(ns420.__path__)),
        "pkgutilns_members": sorted(m.name for m in pkgutil.iter_modules(pkgutilns.__path__)),
    }
