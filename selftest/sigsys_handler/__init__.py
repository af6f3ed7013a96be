"""Take over SIGSYS (the signal seccomp's trap action raises) so violations
go unreported and unpunished, then make a call the policy kills."""

import ctypes
import signal

import plugbox


@plugbox.export
def attack(ctx):
    print("[about to replace the SIGSYS handler]", flush=True)
    signal.signal(signal.SIGSYS, lambda *_: None)
    print("[SIGSYS handler replaced; about to call ptrace]", flush=True)
    libc = ctypes.CDLL(None, use_errno=True)
    rc = libc.ptrace(2, 1, None, None)
    return {"contained": False, "how": f"replaced the SIGSYS handler; ptrace afterwards -> {rc}, not killed"}
