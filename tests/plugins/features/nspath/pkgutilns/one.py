VALUE = "pkgutilns.one from the plugin root"
