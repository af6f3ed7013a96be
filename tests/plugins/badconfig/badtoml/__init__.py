"""badtoml: its plugin.toml is not valid TOML."""

import plugbox


@plugbox.export
def ping():
    return "pong"
