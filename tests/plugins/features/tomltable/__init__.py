"""tomltable: exports declared in plugin.toml as a table mapping exported
names to object references inside the plugin."""
