"""pathhelper: imported by pathmod.probe."""
VALUE = "path helper"
