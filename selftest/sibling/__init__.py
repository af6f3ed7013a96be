"""The well-behaved sibling: `plugbox selftest` calls ping() after every
probe to show that an attack on the supervisor or on another plugin left
this plugin running and answering."""

import os

import plugbox


@plugbox.export
def ping():
    return "pong"


@plugbox.export
def pid():
    return os.getpid()
