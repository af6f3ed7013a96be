"""framework.typeA.evil: a hostile typeA plugin. Its run() looks for the
host's password hashes, then tries to take over its supervisor with ptrace.

The sandbox's mount tree holds no host /etc, so the read fails; ptrace is
never allowed (`@debug: kill` in python.policy), so the worker is killed on
the spot and the call ends with a violation naming the syscall and the
rule. The other typeA plugins still answer.
"""

import ctypes
import os

PTRACE_SEIZE = 0x4206


def run(context=None):
    try:
        with open("/etc/shadow") as f:
            print("read /etc/shadow: " + f.readline().strip())
    except OSError as e:
        print(f"could not read /etc/shadow: {type(e).__name__}: {e.strerror}")
    print("trying ptrace on the supervisor...", flush=True)
    libc = ctypes.CDLL(None, use_errno=True)
    rc = libc.ptrace(PTRACE_SEIZE, os.getppid(), None, None)
    return f"ptrace returned {rc} (errno {ctypes.get_errno()}): the sandbox did not stop it"
