"""probe: what the layers beside seccomp leave a plugin, for test_layers.py.

Each function makes its attempts and returns what happened (errno values,
counts, exception names), so the test sees both that the attempt was made
and how it ended. The policy decides what the worker gets; the same code
runs under every policy the test writes."""

import mmap
import os
import socket
import tempfile
import threading
import time

import plugbox


def _error(e, **extra):
    return {"type": type(e).__name__, "errno": getattr(e, "errno", None), **extra}


@plugbox.export
def ping():
    return "pong"


@plugbox.export
def read_file(path):
    """The first line of path, or the error."""
    try:
        with open(path) as f:
            return {"text": f.readline().rstrip("\n")}
    except OSError as e:
        return _error(e)


@plugbox.export
def mounts():
    """Every mount the worker sees, from its own /proc/self/mountinfo:
    [mount point, per-mount options, file system type]."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.split(" - ", 1)
            fields = left.split()
            found.append([fields[4], fields[5], right.split()[0]])
    return found


@plugbox.export
def list_dir(path):
    """os.listdir(path) sorted, or the error (test_os lists "/")."""
    try:
        return {"names": sorted(os.listdir(path))}
    except OSError as e:
        return _error(e)


@plugbox.export
def names():
    """Who the view's /etc/passwd and /etc/group name, by id and by name."""
    import grp
    import pwd
    return {"me": pwd.getpwuid(os.getuid()).pw_name, "my_group": grp.getgrgid(os.getgid()).gr_name,
            "users": sorted(p.pw_name for p in pwd.getpwall()),
            "groups": sorted(g.gr_name for g in grp.getgrall()),
            "nogroup": grp.getgrnam("nogroup").gr_gid, "nobody": pwd.getpwnam("nobody").pw_uid}


@plugbox.export
def own_file():
    """This plugin's own source can be read (its directory is always allowed)."""
    with open(__file__) as f:
        return f.readline().rstrip("\n")


@plugbox.export
def scratch(token, big):
    """Where tempfile writes: what is there at first, a small file named
    token, then a file of `big` bytes (which should not fit)."""
    where = tempfile.gettempdir()
    before = sorted(os.listdir(where))
    small = os.path.join(where, token)
    with open(small, "w") as f:
        f.write("scratch\n")
    written, result = 0, None
    chunk = b"x" * 65536
    try:
        with open(os.path.join(where, token + ".big"), "wb") as f:
            while written < big:
                f.write(chunk)
                f.flush()
                written += len(chunk)
    except OSError as e:
        result = _error(e)
    return {"dir": where, "before": before, "after": sorted(os.listdir(where)),
            "big_written": written, "big_error": result}


@plugbox.export
def write_anywhere(dirs, name):
    """Try to create `name` in each of dirs, and ask tempfile for a
    directory: every outcome, by directory."""
    out = {}
    for d in dirs:
        try:
            with open(os.path.join(d, name), "w") as f:
                f.write("written by the probe plugin\n")
            out[d] = "written"
        except OSError as e:
            out[d] = _error(e)
    try:
        out["tempfile"] = tempfile.mkstemp()[1]
    except OSError as e:
        out["tempfile"] = _error(e)
    return out


@plugbox.export
def allocate(mib):
    """Allocate mib MiB at once; on MemoryError show the worker goes on.
    bytes(n) comes from calloc: address space, not pages the host must have."""
    try:
        block = bytes(mib << 20)
        return {"allocated": len(block)}
    except MemoryError:
        small = bytes(8 << 20)
        return {"error": "MemoryError", "then_allocated": len(small)}


@plugbox.export
def memory_bomb(kind, cap_mib):
    """Touch every page of 16 MiB blocks, up to cap_mib MiB, until refused:
    `private` blocks (bytearray: heap and private mappings), or `shared`
    ones (mmap.mmap(-1, n), which is MAP_SHARED: pages a memory limit on
    private mappings does not count). Returns how far it got."""
    chunk, blocks, total = 16 << 20, [], 0
    try:
        while total < cap_mib << 20:
            block = bytearray(chunk) if kind == "private" else mmap.mmap(-1, chunk)
            block[::4096] = b"\1" * (chunk // 4096)
            blocks.append(block)
            total += chunk
        error = None
    except (MemoryError, OSError) as e:
        error = _error(e)
    for block in blocks:
        if kind == "shared":
            block.close()
    blocks.clear()
    return {"kind": kind, "error": error, "touched_mib": total >> 20}


@plugbox.export
def reserve(mib):
    """Map mib MiB read-only and touch none of it: address space that is
    never memory (as a read-only mapping of a large file, or glibc's malloc
    arenas, reserve)."""
    try:
        m = mmap.mmap(-1, mib << 20, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
    except OSError as e:
        return _error(e)
    size = len(m)
    m.close()
    return {"reserved_mib": size >> 20}


@plugbox.export
def sleep(seconds):
    time.sleep(seconds)
    return seconds


@plugbox.export
def spin(seconds):
    """Burn CPU for up to `seconds` of wall clock."""
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
    return {"not_stopped": n}


@plugbox.export
def open_many(path, count):
    files = []
    try:
        for _ in range(count):
            files.append(open(path, "rb"))
        return {"opened": len(files)}
    except OSError as e:
        return _error(e, opened=len(files))
    finally:
        for f in files:
            f.close()


@plugbox.export
def threads(count):
    """Start up to count threads that wait; stop at the first refusal."""
    release = threading.Event()
    started, error = [], None
    try:
        for _ in range(count):
            t = threading.Thread(target=release.wait)
            t.start()
            started.append(t)
    except RuntimeError as e:
        error = str(e)
    release.set()
    for t in started:
        t.join()
    # the worker goes on: one more thread once the others are gone
    after = threading.Thread(target=lambda: None)
    after.start()
    after.join()
    return {"started": len(started), "error": error}


@plugbox.export
def connect(port, text):
    """TCP to 127.0.0.1:port, sending text: {"sent": n} or the error and its step."""
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    except OSError as e:
        return _error(e, step="socket")
    try:
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        s.sendall(text.encode())
    except OSError as e:
        return _error(e, step="connect")
    finally:
        s.close()
    return {"sent": len(text)}


@plugbox.export
def fill_inodes(cap):
    """Create empty files in the temporary directory until refused (at
    most cap), then remove them and create one more: how many fitted, the
    error, and whether the directory still works."""
    where = tempfile.gettempdir()
    made, result = 0, None
    try:
        while made < cap:
            os.close(os.open(os.path.join(where, f"inode-{made}"), os.O_CREAT | os.O_WRONLY, 0o600))
            made += 1
    except OSError as e:
        result = _error(e)
    for i in range(made):
        os.unlink(os.path.join(where, f"inode-{i}"))
    with open(os.path.join(where, "after"), "w") as f:
        f.write("still works\n")
    return {"dir": where, "made": made, "error": result}


@plugbox.export
def proc_view():
    """What /proc shows: its entries, this process's status lines that
    say it is sandboxed, which pids it can see, and the paths that must
    not be there."""
    out = {"pid": os.getpid()}
    try:
        out["entries"] = sorted(os.listdir("/proc"))
    except OSError as e:
        out["entries"] = _error(e)
        return out
    with open("/proc/self/status") as f:
        status = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    out["status"] = {k: status.get(k) for k in ("Pid", "Seccomp", "NoNewPrivs", "Name")}
    out["pids"] = sorted(int(e) for e in out["entries"] if e.isdigit())
    out["pid1_is_self"] = os.path.samefile("/proc/1/stat", "/proc/self/stat") if "1" in out["entries"] else None
    out["self"] = {name: os.path.exists(f"/proc/self/{name}") for name in ("maps", "fd", "stat", "status")}
    with open("/proc/self/maps") as f:
        out["maps_lines"] = sum(1 for _ in f)
    out["fds"] = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
    out["absent"] = {p: not os.path.lexists(p) for p in (
        "/proc/sys", "/proc/kallsyms", "/proc/kcore", "/proc/sysrq-trigger", "/proc/meminfo",
        "/proc/2", "/proc/sys/kernel/hostname")}
    try:
        os.close(os.open("/proc/self/mem", os.O_RDWR))
        out["mem_rw"] = "opened"
    except OSError as e:
        out["mem_rw"] = _error(e)
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("500\n")
        out["oom_write"] = "written"
    except OSError as e:
        out["oom_write"] = _error(e)
    return out



@plugbox.export
def resolve_names():
    """Its own host name and localhost resolve (from the view's /etc/hosts);
    another name fails as unknown, without trying DNS."""
    out = {"hostname": socket.gethostname()}
    for key, name in (("own", out["hostname"]), ("localhost", "localhost"), ("other", "example.com")):
        try:
            out[key] = socket.gethostbyname(name)
        except OSError as e:
            out[key] = {"type": type(e).__name__, "errno": e.errno}
    return out
