"""badstart: cannot start: its plugin.toml names an export with terminal
escapes in it, which the worker's start-up error quotes."""
