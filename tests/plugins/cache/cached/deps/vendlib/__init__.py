"""vendlib: a dependency the cached plugin vendors."""
VALUE = "vendlib 1"
