"""workload: in one call, what real plugins do with the standard library.

everything() runs each step below and returns {step: record}. A record is
{"ok": True, "value": ...} when the step did what it does on an ordinary
host (for the steps that must fail in the sandbox - starting a process,
creating a file - what "ordinary" means here is failing cleanly with the
expected exception), else {"ok": False, "error": TYPE, "errno": N,
"message": ...}. Values are deterministic (no pids, times, random numbers),
so two runs under different policies can be compared step by step.

tests/integration/test_policy_minimal.py runs this under python.policy with
one allowing line removed at a time: every line must break some step (or
kill the worker). A step added here should be something plugins really do.
nap(seconds) is a single timed wait, for the test that stops and continues
the worker meanwhile.

Run it under enforcing policies only: under `plugbox learn`, which lets
every call through, its refused steps really fork, run `true` and create
files next to it.
"""

import dataclasses
import errno
import os
import sys

import plugbox

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data.txt")
# A read-only SQLite database shipped with the plugin (journal_mode=DELETE,
# one table `t` holding v = 1..100).
DATABASE = os.path.join(HERE, "data.db")

# Imported inside the call: importing is part of the workload.
STDLIB_MODULES = [
    "abc", "argparse", "array", "ast", "asyncio", "base64", "binascii", "bisect", "bz2",
    "calendar", "cmath", "codecs", "collections", "colorsys", "concurrent.futures",
    "configparser", "contextlib", "contextvars", "copy", "csv", "ctypes", "ctypes.util",
    "dataclasses", "datetime", "decimal", "difflib", "email", "email.mime.text",
    "email.parser", "enum", "errno", "faulthandler", "fcntl", "filecmp", "fnmatch",
    "fractions", "functools", "gc", "getpass", "gettext", "glob", "graphlib", "grp", "gzip",
    "hashlib", "heapq", "hmac", "html", "html.parser", "http", "http.client",
    "http.cookies", "importlib", "importlib.metadata", "importlib.resources", "inspect",
    "io", "ipaddress", "itertools", "json", "keyword", "linecache", "locale", "logging",
    "logging.handlers", "lzma", "mimetypes", "mmap", "multiprocessing", "numbers",
    "operator", "os", "pathlib", "pickle", "platform", "plistlib", "pprint", "pwd",
    "queue", "quopri", "random", "re", "reprlib", "resource", "sched", "secrets",
    "select", "selectors", "shlex", "shutil", "signal", "socket", "sqlite3", "ssl",
    "stat", "statistics", "string", "stringprep", "struct", "subprocess", "sysconfig",
    "tarfile", "tempfile", "textwrap", "threading", "time", "timeit", "tokenize",
    "tomllib", "traceback", "types", "typing", "unicodedata", "urllib.parse",
    "urllib.request", "uuid", "warnings", "weakref", "xml.dom.minidom",
    "xml.etree.ElementTree", "zipfile", "zipimport", "zlib", "zoneinfo",
]


def _failure(e):
    return {"ok": False, "error": type(e).__name__,
            "errno": getattr(e, "errno", None), "message": str(e)[:200]}


def _expect_oserror(func, *allowed):
    """A step that must fail with OSError (errno in allowed, if given)."""
    try:
        func()
    except OSError as e:
        if allowed and e.errno not in allowed:
            raise
        return {"error": type(e).__name__, "errno": errno.errorcode.get(e.errno, e.errno)}
    raise AssertionError("succeeded where the sandbox should refuse")


# --- the steps ---------------------------------------------------------------

def step_imports():
    import importlib
    for name in STDLIB_MODULES:
        importlib.import_module(name)
    return len(STDLIB_MODULES)


def step_json_re_decimal():
    import decimal
    import fractions
    import json
    import re
    import statistics
    decimal.getcontext().prec = 30
    return {
        "json": json.loads(json.dumps({"a": [1, 2.5, "x", None]}, indent=2, sort_keys=True)),
        "re": re.findall(r"(?P<w>\w+)-(\d+)", "plug-42 box-7 x"),
        "decimal": str(decimal.Decimal(1) / decimal.Decimal(7)),
        "fraction": str(fractions.Fraction(3, 12)),
        "mean": statistics.mean([1, 2, 3, 4]),
    }


def step_datetime_zoneinfo():
    import datetime
    import time
    import zoneinfo
    now = datetime.datetime.now(datetime.timezone.utc)
    local = datetime.datetime.now().astimezone()
    fixed = datetime.datetime(2024, 7, 1, 12, 0, tzinfo=datetime.timezone.utc)
    out = {
        "aware": now.tzinfo is not None and local.tzinfo is not None,
        "iso": fixed.isoformat(),
        "parsed": datetime.datetime.strptime("2024-07-01 12:00", "%Y-%m-%d %H:%M").isoformat(),
        "strftime": time.strftime("%Y", time.gmtime(0)),
        "localtime": time.localtime(0).tm_year in (1969, 1970),
        "utc": str(zoneinfo.ZoneInfo("UTC")),
    }
    # Debian's tzdata, when it is installed.
    if os.path.exists("/usr/share/zoneinfo/Europe/Berlin"):
        berlin = zoneinfo.ZoneInfo("Europe/Berlin")
        out["berlin"] = str(fixed.astimezone(berlin).utcoffset())
        out["zones"] = "Europe/Berlin" in zoneinfo.available_timezones()
    return out


def step_hashlib():
    import hashlib
    import hmac
    return {
        "sha256": hashlib.sha256(b"x").hexdigest()[:8],
        "md5": hashlib.md5(b"x").hexdigest()[:8],
        "blake2b": hashlib.blake2b(b"x", digest_size=8).hexdigest(),
        "sha3": hashlib.sha3_256(b"x").hexdigest()[:8],
        "pbkdf2": hashlib.pbkdf2_hmac("sha256", b"pw", b"salt", 1000).hex()[:8],
        "hmac": hmac.new(b"k", b"m", "sha256").hexdigest()[:8],
    }


def step_ssl():
    import ssl
    ctx = ssl.create_default_context()
    # A TLS client hello into memory: everything short of the network.
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    conn = ctx.wrap_bio(incoming, outgoing, server_hostname="example.org")
    try:
        conn.do_handshake()
        handshake = "done?"
    except ssl.SSLWantReadError:
        handshake = "wants-read"
    return {
        "verify": ctx.verify_mode == ssl.CERT_REQUIRED,
        "cas": ctx.cert_store_stats()["x509_ca"] > 0,
        "hello": outgoing.pending > 0,
        "handshake": handshake,
    }


def step_sqlite_memory():
    import sqlite3
    db = sqlite3.connect(":memory:")
    db.execute("create table t (k integer primary key, v text)")
    db.executemany("insert into t (v) values (?)", [(str(i) * 50,) for i in range(5000)])
    db.execute("create index tv on t (v)")
    db.commit()
    rows = db.execute("select count(*), sum(length(v)) from t").fetchone()
    order = db.execute("select k from t order by v desc limit 3").fetchall()
    db.close()
    return {"rows": list(rows), "order": [r[0] for r in order]}


def step_sqlite_readonly_file():
    import sqlite3
    db = sqlite3.connect(f"file:{DATABASE}?mode=ro", uri=True)
    total = db.execute("select count(*), sum(v) from t").fetchone()
    try:
        db.execute("insert into t values (0)")
        write = "succeeded"
    except sqlite3.OperationalError as e:
        write = "refused" if "readonly" in str(e) else str(e)
    db.close()
    return {"total": list(total), "write": write}


def step_ctypes():
    import ctypes
    import ctypes.util
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    buf = ctypes.create_string_buffer(b"hello", 16)
    out = {
        "strlen": libc.strlen(b"hello"),
        "getpid": libc.getpid() == os.getpid(),
        "memmove": ctypes.memmove(buf, b"HE", 2) is not None and buf.value == b"HEllo",
        "struct": ctypes.sizeof(ctypes.c_int64 * 4),
    }
    # find_library runs ldconfig (refused) and then, where gcc is installed,
    # wants a temporary file (none can be made): an OSError the plugin sees.
    try:
        out["find_library"] = ctypes.util.find_library("c") is not None
    except OSError as e:
        out["find_library"] = type(e).__name__
    # A Python callback called from C needs a trampoline in writable and
    # executable memory (libffi): default allows it, strict does not
    # (MemoryError).
    cmp = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int))
    try:
        callback = cmp(lambda a, b: a[0] - b[0])
        values = (ctypes.c_int * 5)(5, 1, 4, 2, 3)
        libc.qsort(values, 5, ctypes.sizeof(ctypes.c_int), callback)
        out["callback"] = list(values)
    except MemoryError:
        out["callback"] = "MemoryError"
    return out


def step_asyncio():
    import asyncio
    import socket

    async def echo_over_socketpair():
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        await loop.sock_sendall(a, b"ping")
        got = await loop.sock_recv(b, 16)
        a.close()
        b.close()
        return got.decode()

    async def streams():
        a, b = socket.socketpair()
        reader, writer = await asyncio.open_connection(sock=a)
        reader2, writer2 = await asyncio.open_connection(sock=b)
        writer.write(b"line\n")
        await writer.drain()
        line = await reader2.readline()
        for w in (writer, writer2):
            w.close()
            await w.wait_closed()
        return line.decode().strip()

    async def main():
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        loop.call_later(0.01, fut.set_result, "later")
        results = await asyncio.gather(
            echo_over_socketpair(), streams(), fut,
            loop.run_in_executor(None, sum, range(10)),
            asyncio.wait_for(asyncio.sleep(0.01, "slept"), 5),
            asyncio.to_thread(len, "thread"))
        queue = asyncio.Queue()
        await queue.put(1)
        results.append(await queue.get())
        return results

    return asyncio.run(main())


def step_threads():
    import queue
    import threading
    lock = threading.Lock()
    cond = threading.Condition()
    barrier = threading.Barrier(6)
    sem = threading.BoundedSemaphore(2)
    event = threading.Event()
    q = queue.Queue()
    counter = [0]
    ready = []

    def work(i):
        barrier.wait(timeout=10)
        with sem:
            for _ in range(1000):
                with lock:
                    counter[0] += 1
        with cond:
            ready.append(i)
            cond.notify_all()
        event.wait(10)
        q.put(i * i)

    threads = [threading.Thread(target=work, args=(i,), name=f"w{i}") for i in range(6)]
    for t in threads:
        t.start()
    with cond:
        cond.wait_for(lambda: len(ready) == 6, timeout=10)
    event.set()
    for t in threads:
        t.join(10)
    local = threading.local()
    local.x = 1
    return {"counter": counter[0], "squares": sorted(q.get() for _ in range(6)),
            "alive": sum(t.is_alive() for t in threads), "names": threads[0].name}


def step_thread_pool():
    from concurrent.futures import ThreadPoolExecutor, as_completed
    with ThreadPoolExecutor(max_workers=4) as pool:
        mapped = list(pool.map(lambda n: n * n, range(20)))
        futures = [pool.submit(sum, range(n)) for n in range(5)]
        done = sorted(f.result() for f in as_completed(futures))
    return {"mapped": sum(mapped), "done": done}


def step_subprocess():
    import subprocess
    return _expect_oserror(lambda: subprocess.run(["true"]), errno.EPERM)


def step_fork():
    return _expect_oserror(os.fork, errno.EPERM)


def step_tempfile():
    import tempfile
    out = {}
    try:
        out["gettempdir"] = tempfile.gettempdir()
    except FileNotFoundError:
        out["gettempdir"] = "none usable"
    out["mkstemp"] = _expect_oserror(lambda: tempfile.mkstemp(dir=HERE))
    out["open_w"] = _expect_oserror(lambda: open(os.path.join(HERE, "new.txt"), "w"))
    out["mkdir"] = _expect_oserror(lambda: os.mkdir(os.path.join(HERE, "newdir")))
    return out


def step_files():
    import glob
    import pathlib
    import shutil
    entries = sorted(os.listdir(HERE))
    with os.scandir(HERE) as it:
        scanned = sorted((e.name, e.is_dir(), e.is_file()) for e in it if e.name != "__pycache__")
    st = os.stat(DATA)
    with open(DATA, encoding="utf-8") as f:
        text = f.read()
    with open(DATA, "rb") as f:
        f.seek(6)
        middle = f.read(5)
        pos = f.tell()
    with open(DATA, "rb", buffering=0) as f:
        raw = f.readall()
    walked = sorted(d for d, _, _ in os.walk(HERE))
    return {
        "listdir": [e for e in entries if e != "__pycache__"],
        "scandir": scanned,
        "stat": [st.st_size, oct(st.st_mode & 0o170000)],
        "lstat": os.lstat(DATA).st_size == st.st_size,
        "realpath": os.path.realpath(DATA) == os.path.realpath(HERE) + "/data.txt",
        "islink": os.path.islink(DATA),
        "text": text.splitlines()[0],
        "middle": middle.decode(),
        "tell": pos,
        "raw": len(raw),
        "pathlib": pathlib.Path(DATA).read_text().count("\n"),
        "glob": [os.path.basename(p) for p in sorted(glob.glob(os.path.join(HERE, "*.txt")))],
        "walk": [os.path.relpath(d, HERE) for d in walked],
        "exists": [os.path.exists(DATA), os.path.exists(DATA + ".missing")],
        "access": [os.access(DATA, os.R_OK), os.access(DATA, os.W_OK | os.X_OK)],
        "getcwd": os.path.isabs(os.getcwd()),
        "disk_usage": shutil.disk_usage(HERE).total > 0,
        "which": shutil.which("sh") is not None,
        "copyfileobj": _copyfileobj(),
    }


def _copyfileobj():
    import io
    import shutil
    out = io.BytesIO()
    with open(DATA, "rb") as f:
        shutil.copyfileobj(f, out)
    return len(out.getvalue())


def step_pipes_and_fds():
    import fcntl
    r, w = os.pipe()
    try:
        os.write(w, b"abc")
        os.set_blocking(r, False)
        got = os.read(r, 10)
        try:
            os.read(r, 10)
            empty = "data?"
        except BlockingIOError:
            empty = "EAGAIN"
        d = os.dup(w)
        d2 = os.dup2(w, d)
        inheritable = os.get_inheritable(d2)
        os.set_inheritable(d2, False)
        os.set_inheritable(d2, True)
        inheritable = [inheritable, os.get_inheritable(d2)]
        os.close(d)
        flags = fcntl.fcntl(r, fcntl.F_GETFL) & os.O_NONBLOCK != 0
        # the older idiom for the same, still common in libraries
        fcntl.fcntl(w, fcntl.F_SETFL, fcntl.fcntl(w, fcntl.F_GETFL) | os.O_NONBLOCK)
        fd_flags = fcntl.fcntl(r, fcntl.F_GETFD) & fcntl.FD_CLOEXEC != 0
        dupfd = fcntl.fcntl(w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(dupfd)
        isatty = os.isatty(r)
    finally:
        os.close(r)
        os.close(w)
    with open(DATA, "rb") as f:
        # a shared lock on a file the plugin opened
        fcntl.flock(f, fcntl.LOCK_SH)
        fcntl.flock(f, fcntl.LOCK_UN)
        fcntl.lockf(f, fcntl.LOCK_SH)
        fcntl.lockf(f, fcntl.LOCK_UN)
        fcntl.lockf(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.lockf(f, fcntl.LOCK_UN)
    return {"read": got.decode(), "empty": empty, "inheritable": inheritable,
            "nonblock": flags, "cloexec": fd_flags, "isatty": isatty}


def _errno_of(func):
    try:
        func()
    except OSError as e:
        return errno.errorcode.get(e.errno, e.errno)
    return None


def step_harmless_calls():
    """Calls that real libraries make and a sandbox has no reason to kill
    (DESIGN.md invariant 3): each gets its real result, or the errno the
    code expects. tests/integration/test_harmless.py checks the values."""
    import ctypes
    import mmap
    import time
    import uuid
    libc = ctypes.CDLL(None, use_errno=True)
    out = {}
    old = os.umask(0o027)
    out["umask"] = os.umask(old) == 0o027
    cwd = os.getcwd()
    try:
        os.chdir(HERE)
        out["chdir"] = os.path.samefile(os.getcwd(), HERE)
        fd = os.open(HERE, os.O_RDONLY | os.O_DIRECTORY)
        os.chdir("/")
        os.fchdir(fd)
        os.close(fd)
        out["fchdir"] = os.path.samefile(os.getcwd(), HERE)
    finally:
        os.chdir(cwd)
    out["clock_getres"] = time.clock_getres(time.CLOCK_PROCESS_CPUTIME_ID) > 0
    out["sched_yield"] = os.sched_yield() is None
    out["sched"] = [os.sched_getscheduler(0) == os.SCHED_OTHER, os.sched_getparam(0).sched_priority,
                    os.sched_get_priority_max(os.SCHED_OTHER), os.sched_get_priority_min(os.SCHED_OTHER)]
    out["getpgid"] = os.getpgid(0) == os.getpgrp()
    with open(DATA, "rb") as f:
        os.fsync(f.fileno())
        os.fdatasync(f.fileno())
        out["fsync"] = True
        out["fstatvfs"] = os.fstatvfs(f.fileno()).f_bsize > 0
    # extended attributes, read as shutil.copystat does
    with open(DATA, "rb") as f:
        out["xattr"] = [isinstance(os.listxattr(DATA), list),
                        isinstance(os.listxattr(DATA, follow_symlinks=False), list),
                        isinstance(os.listxattr(f.fileno()), list),
                        _errno_of(lambda: os.getxattr(DATA, "user.plugbox")),
                        _errno_of(lambda: os.getxattr(DATA, "user.plugbox", follow_symlinks=False)),
                        _errno_of(lambda: os.getxattr(f.fileno(), "user.plugbox"))]
    r, w = os.pipe()
    try:
        out["writev"] = os.writev(w, [b"ab", b"cd"])
        bufs = [bytearray(1), bytearray(3)]
        out["readv"] = [os.readv(r, bufs), b"".join(bufs).decode()]
        # positioned I/O on a pipe: the kernel's ESPIPE, not the sandbox's
        out["pwrite"] = _errno_of(lambda: os.pwrite(w, b"x", 0))
        out["pwritev2"] = _errno_of(lambda: os.pwritev(w, [b"x"], 0))
        out["preadv2"] = _errno_of(lambda: os.preadv(r, [bytearray(1)], 0))
        # glibc's preadv()/pwritev() of C libraries (CPython calls the *v2 ones)
        iov = (ctypes.c_void_p * 2)(ctypes.cast(ctypes.create_string_buffer(1), ctypes.c_void_p), 1)
        out["pwritev"] = [libc.pwritev(w, iov, 1, ctypes.c_long(0)), errno.errorcode.get(ctypes.get_errno())]
        out["preadv"] = [libc.preadv(r, iov, 1, ctypes.c_long(0)), errno.errorcode.get(ctypes.get_errno())]
        with open(DATA, "rb") as f:
            out["sendfile"] = [os.sendfile(w, f.fileno(), 0, 4), os.read(r, 4).decode()]
            out["copy_file_range"] = _errno_of(lambda: os.copy_file_range(f.fileno(), w, 4))
        libc.dup.restype = ctypes.c_int
        d = libc.dup(w)
        out["dup"] = d > w
        d3 = os.dup2(w, d, inheritable=False)
        out["dup3"] = [d3 == d, os.get_inheritable(d3)]
        a, b = os.dup(w), os.dup(w)
        os.closerange(min(a, b, d), max(a, b, d) + 1)
        out["closerange"] = [_errno_of(lambda: os.fstat(x)) for x in (a, b, d)]
        efd = os.eventfd(0)
        os.eventfd_write(efd, 3)
        out["eventfd"] = os.eventfd_read(efd)
        os.close(efd)
    finally:
        os.close(r)
        os.close(w)
    # statx(2) through glibc, as Rust's and Go's standard libraries stat
    buf = ctypes.create_string_buffer(256)
    rc = libc.statx(-100, DATA.encode(), 0, 0x200, buf)   # AT_FDCWD, STATX_SIZE
    out["statx"] = rc == 0 and int.from_bytes(buf.raw[40:48], "little") == os.stat(DATA).st_size
    with mmap.mmap(-1, 4096) as m:
        m[:1] = b"x"
        m.flush()
        out["msync"] = m[:1] == b"x"
    # a worker has no children: asyncio and test suites reap with these
    out["waitpid"] = _raises(lambda: os.waitpid(-1, os.WNOHANG))
    out["waitid"] = _raises(lambda: os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG))
    # a pidfd for itself, and a signal through it (0: only the check)
    import signal
    pidfd = os.pidfd_open(os.getpid())
    try:
        out["pidfd_send_signal"] = signal.pidfd_send_signal(pidfd, 0)
    finally:
        os.close(pidfd)
    out["pidfd_open"] = _errno_of(lambda: os.close(os.pidfd_open(os.getpid())))
    out["pidfd_open_other"] = _errno_of(lambda: os.close(os.pidfd_open(os.getpid() + 1)))
    # no pid at all: the kernel's EINVAL, which code probing for pidfds expects
    out["pidfd_open_invalid"] = _errno_of(lambda: os.pidfd_open(-1))
    # access checks and links relative to a directory (os.*(dir_fd=...));
    # Go and musl programs call faccessat itself (glibc tries faccessat2)
    dfd = os.open(HERE, os.O_RDONLY | os.O_DIRECTORY)
    try:
        name = os.path.relpath(DATA, HERE)
        out["faccessat2"] = os.access(name, os.R_OK, dir_fd=dfd)
        ctypes.set_errno(0)
        libc.syscall.restype = ctypes.c_long
        out["faccessat"] = [libc.syscall(ctypes.c_long(269), ctypes.c_long(-100), DATA.encode(),
                                         ctypes.c_long(os.R_OK)), errno.errorcode.get(ctypes.get_errno())]
        out["readlinkat"] = _errno_of(lambda: os.readlink(name, dir_fd=dfd))
    finally:
        os.close(dfd)
    # hints and zero-copy moves on its own descriptors
    r, w = os.pipe()
    try:
        with open(DATA, "rb") as f:
            out["fadvise"] = os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
            out["splice"] = [os.splice(f.fileno(), w, 4, offset_src=0), os.read(r, 4).decode()]
    finally:
        os.close(r)
        os.close(w)
    # its own scheduling, limits and priority, by pid 0 and by its own pid
    cpus = os.sched_getaffinity(0)
    nice = os.getpriority(os.PRIO_PROCESS, 0)
    own = {}
    for pid in (0, os.getpid()):
        os.sched_setaffinity(pid, cpus)
        os.sched_setscheduler(pid, os.SCHED_OTHER, os.sched_param(0))
        os.sched_setparam(pid, os.sched_param(0))
        os.setpriority(os.PRIO_PROCESS, pid, nice)
        own[pid and "self" or "0"] = __import__("resource").prlimit(pid, __import__("resource").RLIMIT_CORE)
    out["own_sched"] = {k: list(v) for k, v in own.items()}
    out["sched_rr_get_interval"] = os.sched_rr_get_interval(0) >= 0
    out["sched_other_pid"] = _errno_of(lambda: os.sched_setaffinity(os.getpid() + 1, cpus))
    # another pid's limits: none exists in its pid namespace (resource.prlimit(-1))
    out["prlimit_other"] = _errno_of(lambda: __import__("resource").prlimit(-1, __import__("resource").RLIMIT_CORE))
    # setting its own ids, as privilege-dropping code does; root stays refused
    ruid, euid, suid = os.getresuid()
    rgid, egid, sgid = os.getresgid()
    out["own_ids"] = [os.setresuid(ruid, euid, suid), os.setresgid(rgid, egid, sgid), os.setuid(euid),
                      os.setgid(egid), os.setreuid(-1, -1), os.setregid(-1, -1),
                      os.getresuid() == (ruid, euid, suid), os.getresgid() == (rgid, egid, sgid)]
    out["root_ids"] = [_errno_of(lambda: os.setuid(0)), _errno_of(lambda: os.setresgid(0, 0, 0)),
                       _errno_of(lambda: os.setgroups([0]))]
    # terminal process groups of a descriptor that is not open: the kernel's EBADF
    bad = os.open(DATA, os.O_RDONLY)
    os.close(bad)
    out["tcpgrp"] = [_errno_of(lambda: os.tcgetpgrp(bad)), _errno_of(lambda: os.tcsetpgrp(bad, os.getpgrp()))]
    out["uuid1"] = uuid.uuid1().version
    out["getrusage"] = __import__("resource").getrusage(0).ru_maxrss > 0
    out["affinity"] = len(os.sched_getaffinity(0)) > 0
    # a plugin may check that it is sandboxed, and name its threads
    libc.prctl.restype = ctypes.c_int
    name = ctypes.create_string_buffer(16)
    libc.prctl(16, name)   # PR_GET_NAME
    old_name = name.value
    out["prctl"] = {"seccomp": libc.prctl(21, 0, 0, 0, 0), "no_new_privs": libc.prctl(39, 0, 0, 0, 0),
                    "set_name": libc.prctl(15, b"pb-harmless", 0, 0, 0)}
    libc.prctl(16, name)
    out["prctl"]["get_name"] = name.value.decode()
    libc.prctl(15, old_name, 0, 0, 0)
    ctypes.set_errno(0)
    out["prctl"]["set_dumpable"] = [libc.prctl(4, 1, 0, 0, 0), errno.errorcode.get(ctypes.get_errno())]
    # capget: reading its own capability sets (libcap, psutil)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)
    caps = (ctypes.c_uint32 * 6)()
    out["capget"] = [libc.capget(header, caps), list(caps)]
    # NUMA placement (OpenBLAS, libnuma): EPERM, as without CAP_SYS_NICE under Docker
    libc.syscall.restype = ctypes.c_long
    ctypes.set_errno(0)
    mode = ctypes.c_int(-1)
    rc = libc.syscall(ctypes.c_long(239), ctypes.byref(mode), None, ctypes.c_long(0), None, ctypes.c_long(0))
    out["get_mempolicy"] = [rc, errno.errorcode.get(ctypes.get_errno())]
    return out


def step_time():
    import time
    t0 = time.monotonic()
    time.sleep(0.02)
    elapsed = time.monotonic() - t0
    return {
        "slept": elapsed >= 0.015,
        "clocks": all(isinstance(f(), float) for f in (
            time.time, time.perf_counter, time.process_time, time.thread_time)),
        "ns": time.monotonic_ns() > 0,
        "res": time.get_clock_info("monotonic").resolution > 0,
    }


def step_signals():
    import signal
    import threading
    import time
    got = []

    def handler(signum, frame):
        got.append(signal.Signals(signum).name)

    old = {s: signal.signal(s, handler) for s in (signal.SIGALRM, signal.SIGUSR1, signal.SIGUSR2)}
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.01)
        deadline = time.monotonic() + 5
        while "SIGALRM" not in got and time.monotonic() < deadline:
            time.sleep(0.005)
        itimer = signal.getitimer(signal.ITIMER_REAL)
        # alarm(): the classic timeout; set and cancelled again.
        signal.alarm(10)
        left = signal.alarm(0)
        os.kill(os.getpid(), signal.SIGUSR1)
        signal.raise_signal(signal.SIGUSR2)
        signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)
        # synchronous handling: block, send, find it pending, take it
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})
        os.kill(os.getpid(), signal.SIGUSR2)
        pending = signal.SIGUSR2 in signal.sigpending()
        info = signal.sigtimedwait({signal.SIGUSR2}, 1)
        taken = info is not None and info.si_signo == signal.SIGUSR2
        os.kill(os.getpid(), signal.SIGUSR2)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        # wait for a timer's signal: setitimer, then pause()
        signal.setitimer(signal.ITIMER_REAL, 0.01)
        signal.pause()
        os.kill(os.getpid(), 0)
        for _ in range(100):
            if len(got) >= 6:
                break
            time.sleep(0.001)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    return {"handled": sorted(got), "itimer": itimer == (0.0, 0.0), "alarm_left": left > 0,
            "pending": pending, "sigtimedwait": taken, "getsignal": signal.getsignal(signal.SIGINT) is not None}


def step_faulthandler():
    import faulthandler
    import io
    r, w = os.pipe()
    try:
        faulthandler.enable(file=w)
        faulthandler.dump_traceback(file=w, all_threads=True)
        enabled = faulthandler.is_enabled()
        faulthandler.disable()
        os.close(w)
        w = -1
        dump = b""
        while chunk := os.read(r, 65536):
            dump += chunk
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    return {"enabled": enabled, "dump": b"step_faulthandler" in dump,
            "stringio": _raises(lambda: faulthandler.enable(file=io.StringIO()))}


def _raises(func):
    try:
        func()
    except Exception as e:
        return type(e).__name__
    return None


def step_mmap():
    import mmap
    with open(DATA, "rb") as f:
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            first = m.readline().decode().strip()
            found = m.find(b"line 3")
    with mmap.mmap(-1, 1 << 20) as anon:
        anon[:5] = b"hello"
        anon_ok = anon[:5] == b"hello"
    # (resizing a shared anonymous map would fault: grow a private one)
    with mmap.mmap(-1, 1 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS) as anon:
        anon.resize(4 << 20)
        anon[-1:] = b"!"
        anon_ok = anon_ok and len(anon) == 4 << 20
    return {"first": first, "find": found >= 0, "anonymous": anon_ok}


def step_memory():
    big = bytearray()
    for _ in range(32):
        big += bytes(1 << 20)
    chunks = [bytes(1 << 16) for _ in range(256)]
    grown = b"".join(chunks)
    del chunks
    return {"mib": len(big) >> 20, "joined": len(grown) >> 20}


def step_traceback():
    import json
    import linecache
    import traceback
    out = {}
    try:
        json.loads("{")
    except ValueError:
        out["c_level"] = "JSONDecodeError" in traceback.format_exc()
    try:
        int("x")
    except ValueError:
        tb = traceback.format_exc()
        out["source_line"] = 'int("x")' in tb
    out["stack"] = "step_traceback" in "".join(traceback.format_stack())
    out["linecache"] = linecache.getline(__file__, 1).startswith('"""workload')
    return out


def step_logging():
    import io
    import logging
    import logging.handlers
    stream = io.StringIO()
    log = logging.getLogger("workload")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s %(asctime)s"))
    log.addHandler(handler)
    stderr_handler = logging.StreamHandler(sys.stderr)
    log.addHandler(stderr_handler)
    memory = logging.handlers.MemoryHandler(10)
    log.addHandler(memory)
    try:
        log.info("hello %s", "world")
        try:
            1 / 0
        except ZeroDivisionError:
            log.exception("boom")
    finally:
        for h in (handler, stderr_handler, memory):
            log.removeHandler(h)
    try:
        logging.FileHandler(os.path.join(HERE, "plugin.log"))
        file_handler = "opened?"
    except OSError as e:
        file_handler = errno.errorcode.get(e.errno, e.errno)
    return {"lines": stream.getvalue().count("\n") > 3, "file": file_handler}


def step_gc_weakref():
    import gc
    import weakref

    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a
    ref = weakref.ref(a)
    finalized = []
    weakref.finalize(b, finalized.append, "b")
    del a, b
    collected = gc.collect()
    return {"collected": collected > 0, "dead": ref() is None, "finalized": finalized}


def step_random():
    import random
    import secrets
    import uuid
    return {
        "random": 0 <= random.random() < 1,
        "seeded": random.Random(42).randint(0, 1000),
        "system": 0 <= random.SystemRandom().random() < 1,
        "secrets": len(secrets.token_hex(16)),
        "urandom": len(os.urandom(32)),
        "getrandom": len(os.getrandom(8)),
        "uuid4": len(str(uuid.uuid4())),
        "uuid5": str(uuid.uuid5(uuid.NAMESPACE_DNS, "plugbox.example")),
    }


def step_platform():
    import platform
    import sysconfig
    u = platform.uname()
    return {
        "system": u.system,
        "machine": u.machine == os.uname().machine,
        "node": bool(u.node),
        "python": platform.python_version(),
        "libc": platform.libc_ver()[0],
        "platform": platform.platform().startswith("Linux"),
        "os_release": _os_release(platform),
        "sysconfig": bool(sysconfig.get_platform()),
    }


def _os_release(platform):
    # The worker's file system holds no /etc/os-release: the host's name
    # and version are not the plugin's business.
    try:
        return "ID" in platform.freedesktop_os_release()
    except FileNotFoundError:
        return "hidden"


def step_process_info():
    import getpass
    import grp
    import pwd
    return {
        "cpu_count": (os.cpu_count() or 0) > 0,
        "affinity": len(os.sched_getaffinity(0)) > 0,
        "loadavg": len(os.getloadavg()),
        "priority": isinstance(os.getpriority(os.PRIO_PROCESS, 0), int),
        "ids": all(isinstance(i, int) for i in (
            os.getpid(), os.getppid(), os.getuid(), os.geteuid(), os.getgid(),
            os.getegid(), os.getpgrp(), os.getsid(0), _native_id())),
        "resuid": len(os.getresuid()) == 3 and len(os.getresgid()) == 3,
        "groups": isinstance(os.getgroups(), list),
        "user": bool(getpass.getuser()),
        "pwd": pwd.getpwuid(os.getuid()).pw_uid == os.getuid(),
        "grp": grp.getgrgid(os.getgid()).gr_gid == os.getgid(),
        "times": len(os.times()) == 5,
        "environ": isinstance(dict(os.environ), dict),
    }


def _native_id():
    import threading
    return threading.get_native_id()


def step_resource():
    import resource
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    stack = resource.getrlimit(resource.RLIMIT_STACK)
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        lowered = "lowered"
    except (OSError, ValueError) as e:
        lowered = type(e).__name__
    return {
        "maxrss": usage.ru_maxrss > 0,
        "nofile": soft > 0 and hard >= soft,
        "stack": len(stack),
        "pagesize": resource.getpagesize(),
        "threads_usage": resource.getrusage(resource.RUSAGE_THREAD).ru_utime >= 0,
        "setrlimit": lowered,
    }


def step_locale():
    import locale
    out = {"default": locale.setlocale(locale.LC_ALL, "")}
    for name in ("C.UTF-8", "C"):
        out[name] = locale.setlocale(locale.LC_ALL, name)
    out["encoding"] = locale.getpreferredencoding(False)
    out["conv"] = locale.localeconv()["decimal_point"]
    out["strxfrm"] = locale.strxfrm("abc") == "abc"
    out["format"] = locale.format_string("%.2f", 3.14159)
    locale.setlocale(locale.LC_ALL, "C")
    return out


def step_compression():
    import bz2
    import gzip
    import io
    import lzma
    import struct
    import tarfile
    import zipfile
    import zlib
    payload = b"plugbox " * 1000
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.txt", payload)
        z.writestr("b/c.txt", b"c")
    with zipfile.ZipFile(io.BytesIO(zbuf.getvalue())) as z:
        names = z.namelist()
        zip_ok = z.read("a.txt") == payload
    tbuf = io.BytesIO()
    with tarfile.open(fileobj=tbuf, mode="w:gz") as t:
        info = tarfile.TarInfo("x.txt")
        info.size = len(payload)
        t.addfile(info, io.BytesIO(payload))
    with tarfile.open(fileobj=io.BytesIO(tbuf.getvalue()), mode="r:gz") as t:
        tar_names = t.getnames()
    return {
        "struct": list(struct.unpack("<IhQ", struct.pack("<IhQ", 7, -2, 1 << 40))),
        "zlib": zlib.decompress(zlib.compress(payload)) == payload,
        "crc32": zlib.crc32(payload),
        "bz2": bz2.decompress(bz2.compress(payload)) == payload,
        "lzma": lzma.decompress(lzma.compress(payload)) == payload,
        "gzip": gzip.decompress(gzip.compress(payload)) == payload,
        "zip": [names, zip_ok],
        "tar": tar_names,
    }


def step_pickle():
    import collections
    import copy
    import dataclasses
    import pickle

    point = collections.namedtuple("point", "x y")
    data = {"t": (1, 2), "s": {3}, "b": b"x", "f": 1.5, "n": None,
            "nested": [{"k": [1, [2, [3]]]}], "p": dataclasses.astuple(Pair(1, 2))}
    for proto in range(pickle.HIGHEST_PROTOCOL + 1):
        assert pickle.loads(pickle.dumps(data, proto)) == data
    return {"copy": copy.deepcopy(data) == data, "protocols": pickle.HIGHEST_PROTOCOL,
            "namedtuple": point(1, 2).y}


@dataclasses.dataclass
class Pair:
    a: int
    b: int


def step_selectors():
    import select
    import selectors
    import socket
    a, b = socket.socketpair()
    try:
        a.sendall(b"x")
        b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        out = {
            "family": b.family.name,
            "sockname": b.getsockname() == "",
            "peername": b.getpeername() == "",
            "rcvbuf": b.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) > 0,
        }
        with selectors.DefaultSelector() as sel:
            sel.register(b, selectors.EVENT_READ, "b")
            out["default"] = [key.data for key, _ in sel.select(1)]
        with selectors.PollSelector() as sel:
            sel.register(b, selectors.EVENT_READ)
            out["poll"] = len(sel.select(1))
        with selectors.SelectSelector() as sel:
            sel.register(b, selectors.EVENT_READ)
            out["select"] = len(sel.select(1))
        out["select.select"] = len(select.select([b], [], [], 1)[0])
        out["recv"] = b.recv(1).decode()
        a.send(b"yz")
        out["recv_into"] = b.recv_into(bytearray(2))
        a.sendmsg([b"msg"])
        out["recvmsg"] = b.recvmsg(16)[0].decode()
        a.shutdown(socket.SHUT_WR)
        out["eof"] = b.recv(1)
    finally:
        a.close()
        b.close()
    out["eof"] = out["eof"].decode()
    return out


def step_network_refused():
    import socket
    import urllib.request
    out = {"socket": _expect_oserror(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))}
    try:
        urllib.request.urlopen("http://192.0.2.1/", timeout=1)
        out["urlopen"] = "connected?"
    except OSError as e:
        reason = getattr(e, "reason", e)
        out["urlopen"] = errno.errorcode.get(getattr(reason, "errno", None), type(reason).__name__)
    return out


def step_misc_stdlib():
    import argparse
    import configparser
    import csv
    import email.parser
    import html.parser
    import importlib.metadata
    import importlib.resources
    import inspect
    import io
    import ipaddress
    import mimetypes
    import shutil
    import string
    import tomllib
    import unicodedata
    import urllib.parse
    import xml.etree.ElementTree as ET
    parser = argparse.ArgumentParser(prog="p")
    parser.add_argument("--n", type=int)
    cfg = configparser.ConfigParser()
    cfg.read_string("[s]\nk = v\n")
    rows = list(csv.reader(io.StringIO("a,b\n1,2\n")))
    msg = email.parser.Parser().parsestr("Subject: hi\n\nbody")
    return {
        "argparse": parser.parse_args(["--n", "3"]).n,
        "help": "usage: p" in parser.format_help(),
        "terminal": shutil.get_terminal_size().columns > 0,
        "config": cfg["s"]["k"],
        "csv": rows,
        "email": msg["Subject"],
        "html": html.parser.HTMLParser() is not None,
        "ip": str(ipaddress.ip_network("10.0.0.0/8").broadcast_address),
        "mime": mimetypes.guess_type("x.json")[0],
        "template": string.Template("$a").substitute(a=1),
        "toml": tomllib.loads("x = 3")["x"],
        "unicode": unicodedata.name("é"),
        "url": urllib.parse.urlsplit("https://h/p?q=1").query,
        "xml": ET.fromstring("<a><b>t</b></a>").find("b").text,
        "signature": str(inspect.signature(step_misc_stdlib)),
        "resources": importlib.resources.files(__name__).joinpath("data.txt").read_text().count("\n"),
        "metadata": _metadata_missing(importlib.metadata),
    }


def _metadata_missing(metadata):
    try:
        metadata.version("no-such-distribution")
    except metadata.PackageNotFoundError:
        return "not found"
    return "found?"


STEPS = [(name[len("step_"):], func) for name, func in list(globals().items())
         if name.startswith("step_") and callable(func)]


@plugbox.export
def everything(only=None):
    """Run every step (or those named in the list `only`)."""
    results = {}
    for name, func in STEPS:
        if only is not None and name not in only:
            continue
        try:
            results[name] = {"ok": True, "value": func()}
        except BaseException as e:  # noqa: B902 - a step's failure is data
            results[name] = _failure(e)
    return results


@plugbox.export
def steps():
    return [name for name, _ in STEPS]


@plugbox.export
def nap(seconds):
    """Wait with a timeout (a lock, as Event.wait, Thread.join, Queue.get
    do); says when it starts, for a test that stops and continues the worker
    meanwhile as a shell's Ctrl-Z and fg do."""
    import threading
    import time
    lock = threading.Lock()
    lock.acquire()
    print("napping", file=sys.stderr, flush=True)
    t0 = time.monotonic()
    acquired = lock.acquire(timeout=seconds)
    return not acquired and time.monotonic() - t0 >= seconds
