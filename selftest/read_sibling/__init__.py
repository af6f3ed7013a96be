"""List another plugin's directory and read its files (io.FileIO). Even
the names are the other plugin's: listing must fail too."""

import errno
import io
import os

import plugbox


@plugbox.export
def attack(ctx):
    where = ctx["sibling_dir"]
    try:
        names = sorted(os.listdir(where))
        how, listed = [f"listdir({where!r}) -> {names}"], True
    except OSError as e:
        names = ["__init__.py"]   # the one file every package has
        how, listed = [f"listdir({where!r}) -> {errno.errorcode.get(e.errno, e.errno)}"], False
    read = {}
    for name in names:
        try:
            with io.FileIO(os.path.join(where, name)) as f:
                read[name] = f.read(60)
        except OSError as e:
            how.append(f"FileIO({name!r}) -> {errno.errorcode.get(e.errno, e.errno)}")
    how += [f"read {name}: {data!r}" for name, data in read.items()]
    return {"contained": not (listed or read), "how": "; ".join(how)}
