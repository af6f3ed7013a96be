"""tomlwins: declares dependency directories twice; plugin.toml's deps must
win over the __deps_dir__ literal."""

__deps_dir__ = "olddeps"

import sys

import plugbox


@plugbox.export
def which():
    import which_deps
    return {"which": which_deps.WHICH, "sys_path": list(sys.path)}
