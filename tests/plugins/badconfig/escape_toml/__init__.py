"""escape_toml: like escape_dots, with the escaping directory in plugin.toml
after a legitimate one."""

import plugbox


@plugbox.export
def steal():
    import victimdep
    return victimdep.SECRET
