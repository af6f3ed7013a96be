"""vendlib.util: edited in place by a test."""
VALUE = "util 1"


def double(x):
    return 2 * x
