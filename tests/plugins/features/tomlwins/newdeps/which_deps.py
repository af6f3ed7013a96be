WHICH = "newdeps (from plugin.toml)"
