"""A stand-in for the requests library, vendored by plug1."""

__version__ = "2.2.0"
