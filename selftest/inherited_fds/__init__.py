"""Look for descriptors inherited from the supervisor (the runner left one
open without close-on-exec, on purpose). Only 0-5, the worker's channel, may
be open, and pipes whose both ends the worker holds (its own)."""

import os
import stat

import plugbox

KINDS = ((stat.S_ISFIFO, "pipe"), (stat.S_ISSOCK, "socket"), (stat.S_ISREG, "file"),
         (stat.S_ISDIR, "directory"), (stat.S_ISCHR, "char device"))


def _kind(st):
    return next((name for test, name in KINDS if test(st.st_mode)), f"mode {st.st_mode:o}")


@plugbox.export
def attack(ctx):
    found = {}
    for fd in range(1024):
        try:
            found[fd] = os.fstat(fd)
        except OSError:
            pass
    pipes = [st.st_ino for st in found.values() if stat.S_ISFIFO(st.st_mode)]
    strangers = {fd: _kind(st) for fd, st in found.items()
                 if fd > 5 and not (stat.S_ISFIFO(st.st_mode) and pipes.count(st.st_ino) == 2)}
    own = [fd for fd in found if fd > 5 and fd not in strangers]
    how = f"open: {sorted(found)}; the worker's own pipes: {own}; others: {strangers or 'none'}"
    if ctx["leaked_fd"] in strangers:
        how += f"; fd {ctx['leaked_fd']} is the one the runner left open"
    return {"contained": not strangers, "how": how}
