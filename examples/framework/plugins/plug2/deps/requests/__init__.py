"""A stand-in for the requests library, vendored by plug2."""

__version__ = "2.3.0"
