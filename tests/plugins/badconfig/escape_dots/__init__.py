"""escape_dots: a dependency directory outside the plugin, reached with '..'.
plugbox must refuse the configuration (it "escapes" the plugin directory)."""

__deps_dir__ = "../victim/deps"

import plugbox


@plugbox.export
def steal():
    import victimdep
    return victimdep.SECRET
