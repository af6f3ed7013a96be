VALUE = "pkgutilns.one from deps"
