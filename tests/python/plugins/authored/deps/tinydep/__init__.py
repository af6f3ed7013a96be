"""A vendored dependency of the `authored` plugin."""

HELLO = "hello from tinydep"
