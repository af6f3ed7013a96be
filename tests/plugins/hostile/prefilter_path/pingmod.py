"""prefilter_path (path layout): the plugin directory itself is the import
root, and it holds encodings/, sitecustomize.py, usercustomize.py,
apport_python_hook.py and zz_prefilter.pth, each of which leaves a marker
if it ever runs. ping() is this plugin's ordinary entry point."""

import sys

import encodings


def ping():
    return {
        "answer": "pong",
        "encodings_file": encodings.__file__,
        "loaded": sorted(name for name in ("sitecustomize", "usercustomize", "apport_python_hook")
                         if name in sys.modules),
    }
