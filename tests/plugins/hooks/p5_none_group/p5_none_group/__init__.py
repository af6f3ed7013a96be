"""Provides only typeB: never called by a typeA hook."""


def other(*args, **kwargs):
    return "p5 typeB"
