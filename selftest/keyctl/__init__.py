"""Look up the user's keyring with keyctl (the keys of every process of the
same user live there)."""

import ctypes
import errno

import plugbox

SYS_keyctl = 250
KEYCTL_GET_KEYRING_ID = 0
KEY_SPEC_USER_KEYRING = -4


@plugbox.export
def attack(ctx):
    libc = ctypes.CDLL(None, use_errno=True)
    print("[about to call keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING)]", flush=True)
    serial = libc.syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0)
    if serial < 0:
        return {"contained": True, "how": f"keyctl(KEYCTL_GET_KEYRING_ID) -> {errno.errorcode.get(ctypes.get_errno())}"}
    return {"contained": False, "how": f"keyctl(KEYCTL_GET_KEYRING_ID) -> the user keyring {serial}"}
