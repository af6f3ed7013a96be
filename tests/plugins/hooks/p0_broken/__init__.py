"""Cannot start: its manifest names another plugin."""
