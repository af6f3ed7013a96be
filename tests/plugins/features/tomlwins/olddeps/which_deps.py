WHICH = "olddeps (from __deps_dir__)"
