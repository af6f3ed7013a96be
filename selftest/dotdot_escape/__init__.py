"""Climb out of the plugin directory with '..': to the sibling plugin next
door and, with enough '..', to the root and the host's /etc/passwd (a
passwd file of the worker's own, not the host's, is no escape)."""

import errno
import os

import plugbox


@plugbox.export
def attack(ctx):
    here = os.path.dirname(os.path.abspath(__file__))
    sibling = os.path.basename(ctx["sibling_dir"])
    how, escaped = [], False
    for path in (f"{here}/../{sibling}/__init__.py", here + "/.." * 24 + "/etc/passwd"):
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                own = path.endswith("passwd") and [st.st_dev, st.st_ino] != ctx["passwd_id"]
                how.append(f"open({path!r}) read {f.read(40)!r}" + (": not the host's file" if own else ""))
                escaped = escaped or not own
        except OSError as e:
            how.append(f"open({path!r}) -> {errno.errorcode.get(e.errno, e.errno)}")
    return {"contained": not escaped, "how": "; ".join(how)}
