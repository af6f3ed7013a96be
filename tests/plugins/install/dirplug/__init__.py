"""A plugin installed from a directory by tests/integration/test_install.py
(`plugbox install --plugins P tests/plugins/install/dirplug`)."""
import plugbox

from . import helper

__version__ = "0.3"


@plugbox.export
def answer():
    return helper.text()
