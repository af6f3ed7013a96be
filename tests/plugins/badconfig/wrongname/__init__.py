"""wrongname: plugin.toml claims another plugin's name."""

import plugbox


@plugbox.export
def ping():
    return "pong"
