# pkgutil-style namespace package: the same file in every portion.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)
