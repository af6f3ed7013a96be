"""Read the worker's capabilities with capget: the effective, permitted and
inheritable sets must all be empty (the bounding and ambient sets too, where
prctl may ask)."""

import ctypes
import errno

import plugbox

SYS_capget = 125
LINUX_CAPABILITY_VERSION_3 = 0x20080522
PR_CAPBSET_READ = 23
PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET = 47, 1
LAST_CAP = 40


@plugbox.export
def attack(ctx):
    libc = ctypes.CDLL(None, use_errno=True)
    header = (ctypes.c_uint32 * 2)(LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    if libc.syscall(SYS_capget, header, data) < 0:
        return {"contained": False, "how": f"capget -> {errno.errorcode.get(ctypes.get_errno())}: sets unknown"}
    sets = {name: data[i] | data[i + 3] << 32 for i, name in enumerate(("effective", "permitted", "inheritable"))}
    how = ", ".join(f"{name} {value:#x}" for name, value in sets.items())
    for label, args in (("bounding", (PR_CAPBSET_READ,)), ("ambient", (PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET))):
        ctypes.set_errno(0)
        held = [cap for cap in range(LAST_CAP + 1) if libc.prctl(*args, cap, 0, 0) == 1]
        err = ctypes.get_errno()
        if held:
            sets[label] = held
            how += f", {label} {held}"
        elif err:
            how += f", {label} not readable (prctl -> {errno.errorcode.get(err)})"
        else:
            how += f", {label} empty"
    return {"contained": not any(sets.values()), "how": "capget: " + how}
