"""vendlib.marker: a test plants poisoned pycs for this module."""
VALUE = "marker clean"
