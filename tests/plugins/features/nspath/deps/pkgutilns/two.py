VALUE = "pkgutilns.two from deps"
