"""Run a shell command with subprocess (fork/vfork/clone3 + exec)."""

import errno
import subprocess

import plugbox


@plugbox.export
def attack(ctx):
    try:
        out = subprocess.run(["/bin/sh", "-c", "echo escaped; id"], capture_output=True, timeout=5)
    except OSError as e:
        return {"contained": True, "how": f"subprocess.run(['/bin/sh', ...]) -> {errno.errorcode.get(e.errno, e.errno)}"}
    except subprocess.SubprocessError as e:
        return {"contained": False, "how": f"subprocess.run started /bin/sh: {e}"}
    return {"contained": False, "how": f"subprocess.run(['/bin/sh', ...]) printed {out.stdout[:60]!r}"}
