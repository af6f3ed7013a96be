# Hostile: must never run (see the plugin's __init__.py / pingmod.py).
# A fake stdlib 'encodings' package: if it ran during interpreter start-up,
# the start-up would also fail (no codec search function).
import os as _os

_MARKER_DIR = "@MARKER_DIR@"
if not _MARKER_DIR.startswith("@"):
    try:
        with open(_os.path.join(_MARKER_DIR, "encodings.ran"), "w") as _f:
            _f.write("ran before the filter\n")
    except OSError:
        pass
print("PREFILTER MARKER: encodings ran", flush=True)
