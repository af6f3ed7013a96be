"""pathcached: a plugin in the path layout (the directory itself is on
sys.path). pathmod:probe imports pathhelper and says how it was loaded."""

import sys

COMPILED = []
sys.addaudithook(lambda event, args: COMPILED.append(args[1])
                 if event == "compile" and len(args) > 1 and isinstance(args[1], str) else None)


def probe():
    seen = len(COMPILED)
    import pathhelper
    return {"compiled": COMPILED[seen:], "cached": pathhelper.__spec__.cached,
            "value": pathhelper.VALUE, "self_cached": __spec__.cached}
