import plugbox


@plugbox.export
def from_submodule():
    return "from_submodule"
