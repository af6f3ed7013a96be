"""escape_abs: an absolute dependency directory, the host's site-packages."""

__deps_dir__ = "/usr/lib/python3/dist-packages"

import plugbox


@plugbox.export
def steal():
    import yaml
    return yaml.__version__
