"""Mount a tmpfs over the runner's writable directory (mount is how most
container escapes reshape the file system). Undone at once if it works."""

import ctypes
import errno

import plugbox

SYS_mount = 165
SYS_umount2 = 166
MNT_DETACH = 2


@plugbox.export
def attack(ctx):
    libc = ctypes.CDLL(None, use_errno=True)
    target = ctx["write_dir"].encode()
    print(f"[about to call mount('tmpfs', {target.decode()!r})]", flush=True)
    if libc.syscall(SYS_mount, b"none", target, b"tmpfs", 0, None) < 0:
        return {"contained": True, "how": f"mount(tmpfs, {target.decode()!r}) -> {errno.errorcode.get(ctypes.get_errno())}"}
    libc.syscall(SYS_umount2, target, MNT_DETACH)
    return {"contained": False, "how": f"mount(tmpfs, {target.decode()!r}) succeeded (unmounted again)"}
