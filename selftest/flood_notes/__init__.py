"""5000 calls of a host function no policy grants: each is refused, and
each would be a "denied host call" note. Contained when the runner sees a
bounded number of notes and a "dropped" note (probes.txt: output)."""

import plugbox


@plugbox.export
def attack(ctx):
    refused = 0
    for _ in range(5000):
        try:
            plugbox.host_call("selftest_not_granted")
        except PermissionError:
            refused += 1
    return {"contained": True, "how": f"{refused} host calls refused"}
