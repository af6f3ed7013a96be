"""The older way to install a filter, prctl(PR_SET_SECCOMP), with a filter
that returns ALLOW for everything; then a call the policy kills. The kill
must still come."""

import ctypes
import errno
import struct

import plugbox

PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2


@plugbox.export
def attack(ctx):
    libc = ctypes.CDLL(None, use_errno=True)
    insns = ctypes.create_string_buffer(struct.pack("=HBBI", 0x06, 0, 0, 0x7fff0000))   # ret ALLOW
    prog = ctypes.create_string_buffer(struct.pack("=HxxxxxxQ", 1, ctypes.addressof(insns)))
    rc = libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog, 0, 0)
    outcome = "installed" if rc == 0 else errno.errorcode.get(ctypes.get_errno())
    print(f"[prctl(PR_SET_SECCOMP, allow-all) -> {outcome}; about to call ptrace]", flush=True)
    libc.ptrace(2, 1, None, None)
    return {"contained": False, "how": f"prctl(PR_SET_SECCOMP) -> {outcome}; ptrace afterwards was not killed"}
