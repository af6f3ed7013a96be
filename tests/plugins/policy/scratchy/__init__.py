"""Files in a private scratch directory (`@scratch` in its policy, see
tests/policies/scratch): what sqlite3, the write-fsync-rename idiom,
shutil.copy2 and mmap do there, with the results a user would check."""

import errno
import mmap
import os
import shutil
import sqlite3
import tempfile

import plugbox


@plugbox.export
def files():
    out = {}
    root = tempfile.mkdtemp()
    out["tmpdir"] = os.path.dirname(root)
    # sqlite3 on a file: pwrite64, fsync/fdatasync, its journal
    db_path = os.path.join(root, "data.db")
    db = sqlite3.connect(db_path)
    db.execute("create table t (k integer primary key, v text)")
    db.executemany("insert into t (v) values (?)", [(str(i),) for i in range(1000)])
    db.commit()
    db.close()
    db = sqlite3.connect(db_path)
    out["sqlite"] = db.execute("select count(*), sum(k) from t").fetchone()
    db.close()
    # write, fsync, rename over the old file: the atomic-replace idiom
    target = os.path.join(root, "config.json")
    with open(target, "w") as f:
        f.write("old")
    tmp = target + ".tmp"
    with open(tmp, "w") as f:
        f.write('{"v": 2}')
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)
    with open(target) as f:
        out["replace"] = f.read()
    # positioned writes and reads
    fd = os.open(os.path.join(root, "blob"), os.O_RDWR | os.O_CREAT, 0o600)
    os.pwrite(fd, b"hello world", 0)
    os.pwrite(fd, b"W", 6)
    out["pwrite"] = os.pread(fd, 11, 0).decode()
    os.fdatasync(fd)
    os.close(fd)
    # shutil.copy2 (sendfile) and copy_file_range
    copy = shutil.copy2(db_path, os.path.join(root, "copy.db"))
    out["copy2"] = [os.path.getsize(copy) == os.path.getsize(db_path),
                    os.stat(copy).st_mtime == os.stat(db_path).st_mtime]
    with open(target, "rb") as src, open(os.path.join(root, "range"), "wb") as dst:
        out["copy_file_range"] = os.copy_file_range(src.fileno(), dst.fileno(), 100)
    # a shared file mapping written and flushed (msync)
    with open(os.path.join(root, "mapped"), "w+b") as f:
        f.truncate(4096)
        with mmap.mmap(f.fileno(), 4096) as m:
            m[:5] = b"mmap!"
            m.flush()
        f.seek(0)
        out["mmap_flush"] = f.read(5).decode()
    shutil.rmtree(root)
    out["cleaned"] = not os.path.exists(root)
    return out


@plugbox.export
def sparse(offset, scratch_mib):
    """A sparse file with one byte at `offset` in scratch (test_mmap and
    test_io seek to 2-4 GiB), then real bytes past the scratch's size, then
    a memfd, whose pages no scratch size would bound."""
    root = tempfile.mkdtemp()
    out = {}
    path = os.path.join(root, "sparse")
    with open(path, "wb") as f:
        f.seek(offset)
        f.write(b"!")
    st = os.stat(path)
    out["size"] = st.st_size
    out["blocks_kib"] = st.st_blocks // 2
    # the byte at 4 GiB, mapped (offset: a multiple of the page size)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 1, offset=offset, access=mmap.ACCESS_READ) as m:
        out["mapped"] = m[:1].decode()
    os.unlink(path)
    chunk = b"x" * (1 << 20)
    written = 0
    try:
        with open(os.path.join(root, "full"), "wb") as f:
            for _ in range(scratch_mib + 1):
                f.write(chunk)
                f.flush()
                written += 1
        out["fill"] = "written"
    except OSError as e:
        out["fill"] = errno.errorcode.get(e.errno, e.errno)
    out["filled_mib_within_scratch"] = written <= scratch_mib
    try:
        os.close(os.memfd_create("pb"))
        out["memfd"] = "created"
    except OSError as e:
        out["memfd"] = errno.errorcode.get(e.errno, e.errno)
    shutil.rmtree(root)
    return out


@plugbox.export
def executable():
    """A script written in scratch: shutil.which finds it (test_shutil's
    TestWhich) and it maps PROT_EXEC (test_mmap); running it stays refused."""
    root = tempfile.mkdtemp()
    path = os.path.join(root, "tool")
    with open(path, "w") as f:
        f.write("#!/bin/sh\necho hi\n")
    os.chmod(path, 0o755)
    out = {"which": shutil.which("tool", path=root) == path, "access_x": os.access(path, os.X_OK)}
    with open(path, "rb") as f:
        try:
            with mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ | mmap.PROT_EXEC) as m:
                out["map_exec"] = m[:2].decode()
        except OSError as e:
            out["map_exec"] = errno.errorcode.get(e.errno, e.errno)
    try:
        os.execv(path, [path])
    except OSError as e:
        out["execv"] = errno.errorcode.get(e.errno, e.errno)
    shutil.rmtree(root)
    return out
