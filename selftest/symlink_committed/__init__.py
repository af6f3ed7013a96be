"""Follow a symlink shipped inside the plugin itself (passwd_link ->
/etc/passwd): the plugin's files are untrusted, links included. What it
reaches must not be the host's file (ctx["passwd_id"]: device, inode)."""

import errno
import os

import plugbox


@plugbox.export
def attack(ctx):
    link = os.path.join(os.path.dirname(os.path.abspath(__file__)), "passwd_link")
    if not os.path.islink(link):
        return {"contained": False, "how": f"{link} is missing: the selftest tree is incomplete"}
    target = os.readlink(link)
    try:
        with open(link, "rb") as f:
            data, st = f.read(40), os.fstat(f.fileno())
    except OSError as e:
        return {"contained": True, "how": f"open({link!r} -> {target!r}) -> {errno.errorcode.get(e.errno, e.errno)}"}
    host = [st.st_dev, st.st_ino] == ctx["passwd_id"]
    return {"contained": not host,
            "how": f"open({link!r} -> {target!r}) read {data!r}: {'the host' if host else 'not the host'}'s file"}
