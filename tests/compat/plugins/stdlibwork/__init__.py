"""stdlibwork: standard-library workloads that real plugins run, each
returning what a user would check. The test runs it under `default` plus a
scratch directory (its policy: openat, @file-write, @scratch; then default)
and vendors Debian's msgpack into deps/ for importlib.metadata."""
__deps_dir__ = "deps"

import os
import tempfile

import plugbox


@plugbox.export
def ctypes_qsort(values):
    """libc's qsort calling back into Python through a ctypes callback
    (libc by its soname: ctypes.util.find_library runs ldconfig, a process)."""
    import ctypes
    libc = ctypes.CDLL("libc.so.6")
    cmp_t = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int))
    calls = []

    def compare(a, b):
        calls.append(1)
        return a[0] - b[0]
    arr = (ctypes.c_int * len(values))(*values)
    libc.qsort(arr, len(arr), ctypes.sizeof(ctypes.c_int), cmp_t(compare))
    return {"sorted": list(arr), "callbacks": len(calls) > 0}


@plugbox.export
def uuid1():
    import uuid
    a, b = uuid.uuid1(), uuid.uuid1()
    return {"version": a.version, "variant": a.variant, "distinct": a != b, "ordered": b.time >= a.time}


@plugbox.export
def thread_pool(workers=16):
    """Every worker alive at once (a barrier of `workers` parties)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor
    barrier = threading.Barrier(workers, timeout=20)

    def task(i):
        barrier.wait()
        return i * i, threading.get_ident()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(task, range(workers)))
    return {"sum": sum(r[0] for r in results), "threads": len({r[1] for r in results})}


@plugbox.export
def asyncio_executor():
    import asyncio
    import time

    def blocking(x):
        time.sleep(0.01)
        return x * 2

    async def main():
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(*(loop.run_in_executor(None, blocking, i) for i in range(5)))
        await asyncio.sleep(0)
        return results
    return asyncio.run(main())


@plugbox.export
def sqlite_file():
    """sqlite3 on a file in scratch, then the write-fsync-rename idiom."""
    import sqlite3
    d = tempfile.mkdtemp()
    path = os.path.join(d, "db.sqlite")
    con = sqlite3.connect(path)
    con.execute("pragma synchronous = full")
    con.execute("create table t (k text primary key, v integer)")
    con.executemany("insert into t values (?, ?)", [(f"k{i}", i) for i in range(100)])
    con.commit()
    con.close()
    con = sqlite3.connect(path)
    total = con.execute("select sum(v) from t").fetchone()[0]
    con.close()

    final = os.path.join(d, "state.json")
    tmp = final + ".tmp"
    with open(tmp, "w") as f:
        f.write('{"saved": true}')
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)
    dirfd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)
    with open(final) as f:
        state = f.read()
    return {"dir": d, "sum": total, "state": state, "tmp_gone": not os.path.exists(tmp)}


@plugbox.export
def copy2():
    import shutil
    d = tempfile.mkdtemp()
    src = os.path.join(d, "src.bin")
    with open(src, "wb") as f:
        f.write(os.urandom(100000))
    os.utime(src, (1_000_000_000, 1_000_000_000))
    dst = shutil.copy2(src, os.path.join(d, "dst.bin"))
    with open(src, "rb") as a, open(dst, "rb") as b:
        same = a.read() == b.read()
    return {"same": same, "mtime": os.stat(dst).st_mtime, "size": os.path.getsize(dst)}


@plugbox.export
def mmap_flush():
    import mmap
    d = tempfile.mkdtemp()
    path = os.path.join(d, "m.bin")
    with open(path, "wb") as f:
        f.write(b"\0" * 4096)
    with open(path, "r+b") as f:
        m = mmap.mmap(f.fileno(), 4096)
        m[0:11] = b"hello mmap!"
        m.flush()
        m.close()
    with open(path, "rb") as f:
        return f.read(11).decode()


@plugbox.export
def zoneinfo():
    from datetime import datetime
    from zoneinfo import ZoneInfo
    tz = ZoneInfo("Europe/Berlin")
    return [str(datetime(2024, 1, 15, 12, tzinfo=tz).utcoffset()),
            str(datetime(2024, 7, 15, 12, tzinfo=tz).utcoffset()),
            datetime(2024, 3, 31, 1, 30, tzinfo=ZoneInfo("UTC")).astimezone(tz).isoformat()]


@plugbox.export
def locale_c():
    import locale
    set_to = locale.setlocale(locale.LC_ALL, "C.UTF-8")
    return {
        "setlocale": set_to,
        "encoding": locale.getpreferredencoding(False),
        "formatted": locale.format_string("%.2f", 1234.5, grouping=True),
        "sorted": sorted(["b", "A", "a", "B"], key=locale.strxfrm),
    }


@plugbox.export
def resources_and_metadata():
    import importlib.metadata
    import importlib.resources
    data = importlib.resources.files(__name__).joinpath("data.txt").read_text()
    import msgpack
    return {
        "data": data.strip(),
        "msgpack_version": importlib.metadata.version("msgpack"),
        "msgpack_module_version": ".".join(map(str, msgpack.version)),
    }
