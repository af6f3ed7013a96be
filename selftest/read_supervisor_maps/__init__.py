"""Read the supervisor's memory map (/proc/PID/maps: its layout defeats
ASLR), line by line in text mode."""

import errno

import plugbox


@plugbox.export
def attack(ctx):
    path = f"/proc/{ctx['supervisor_pid']}/maps"
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            lines = [line.strip() for line, _ in zip(f, range(2))]
    except OSError as e:
        return {"contained": True, "how": f"open({path!r}) -> {errno.errorcode.get(e.errno, e.errno)}"}
    return {"contained": not lines, "how": f"{path} begins {lines!r}"}
