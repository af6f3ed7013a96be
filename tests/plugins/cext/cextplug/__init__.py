"""cextplug: a plugin whose vendored dependency is a C extension module
(deps/fastsum.cpython-311-<arch>.so, compiled by the test from
tests/plugins/cext-src/fastsum.c): dlopen of a .so from the plugin's own
deps must work inside the sandbox."""

__deps_dir__ = "deps"

import plugbox


@plugbox.export
def total(numbers):
    import fastsum
    return {"sum": fastsum.sum(numbers), "module_file": fastsum.__file__}
