"""Files in a private scratch directory (`@scratch` in its policy, see
tests/policies/scratch): what sqlite3, the write-fsync-rename idiom,
shutil.copy2 and mmap do there, with the results a user would check."""

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
