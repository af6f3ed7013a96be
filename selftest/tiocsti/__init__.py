"""Type into the terminal with TIOCSTI on descriptors 0, 1 and 2 (the
characters would run as the user's next command once the plugin exits)."""

import ctypes
import errno
import termios

import plugbox


@plugbox.export
def attack(ctx):
    libc = ctypes.CDLL(None, use_errno=True)
    char = ctypes.c_char(b"#")
    how, typed = [], False
    for fd in (0, 1, 2):
        print(f"[about to call ioctl({fd}, TIOCSTI)]", flush=True)
        if libc.ioctl(fd, termios.TIOCSTI, ctypes.byref(char)) == 0:
            typed = True
            how.append(f"ioctl({fd}, TIOCSTI) typed a character")
        else:
            how.append(f"ioctl({fd}, TIOCSTI) -> {errno.errorcode.get(ctypes.get_errno())}")
    return {"contained": not typed, "how": "; ".join(how)}
