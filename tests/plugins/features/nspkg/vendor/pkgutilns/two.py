VALUE = "pkgutilns.two from vendor"
