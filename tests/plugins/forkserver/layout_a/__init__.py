"""layout_a (and its copy layout_b, made by the test): what a worker shares
with its siblings when both are cloned from the fork-server, or not when
each is exec'd: the hash secret and the address layout."""

import os

import plugbox


@plugbox.export
def fingerprint():
    return {
        "hash": hash("plugbox"),              # salted by the hash secret
        "none_at": id(None),                  # where libpython is mapped
        "heap_at": id(os.environ),            # an object made at start-up
        "pid": os.getpid(),
    }
