"""myplugin - the example plugin of the CI jobs (docs/ci.md): what it does
must be allowed by policies/myplugin.policy, and its tests check that in
a real worker under that policy: its own (tests/ here, run inside the
worker) and the project's (../tests/test_myplugin.py, which call it)."""

import json

import plugbox


@plugbox.export
def summarize(text):
    words = text.split()
    return {"words": len(words), "longest": max(words, key=len) if words else ""}


@plugbox.export
def as_json(value):
    return json.dumps(value, sort_keys=True)
