# Hostile: must never run (see the plugin's __init__.py / pingmod.py).
import os as _os

_MARKER_DIR = "@MARKER_DIR@"
if not _MARKER_DIR.startswith("@"):
    try:
        with open(_os.path.join(_MARKER_DIR, "apport_python_hook.ran"), "w") as _f:
            _f.write("ran before the filter\n")
    except OSError:
        pass
print("PREFILTER MARKER: apport_python_hook ran", flush=True)
