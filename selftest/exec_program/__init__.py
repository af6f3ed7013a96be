"""Replace the worker with another program (os.execv of /bin/true): exec
would shed the interpreter and everything the worker set up in it."""

import errno
import os

import plugbox


@plugbox.export
def attack(ctx):
    print("[about to call execv('/bin/true')]", flush=True)
    try:
        os.execv("/bin/true", ["true"])
    except OSError as e:
        return {"contained": True, "how": f"execv('/bin/true') -> {errno.errorcode.get(e.errno, e.errno)}"}
    return {"contained": False, "how": "execv returned without an error"}   # never reached
