"""A custom exception raised two calls deep, with a multi-line message."""


class PluginError(Exception):
    pass


def deep_failure():
    _level2()


def _level2():
    raise PluginError("first line\nsecond line")
