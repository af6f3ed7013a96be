"""tomllist: exports declared in plugin.toml as a list of attribute names of
this package, with no decorator. helper() is not exported."""

__version__ = "0.0.0"  # plugin.toml's version wins over this literal


def square(x):
    return x * x


def version_info():
    return {"manifest_version": "3.1.4"}


def helper():
    return "reachable only as tomllist:helper"
