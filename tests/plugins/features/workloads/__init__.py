"""The workloads the built-in policy was measured on (README "Syscall
policy"), run for real under the filter: if the policy misses a syscall one
of them needs, the worker is killed and the test says which."""
import plugbox


@plugbox.export
def run_all():
    import asyncio
    import concurrent.futures
    import ctypes
    import hashlib
    import json
    import logging
    import random
    import re
    import sqlite3
    import ssl
    import threading
    import time
    import tomllib
    import traceback
    import uuid
    import zoneinfo

    out = {}
    out["json"] = json.loads(json.dumps({"a": [1, 2.5, "x"]}))["a"][2]
    out["re"] = re.match(r"(\w+)-(\d+)", "plug-42").group(2)
    out["toml"] = tomllib.loads("x = 3")["x"]

    async def add(a, b):
        await asyncio.sleep(0.01)
        return a + b
    out["asyncio"] = asyncio.run(add(2, 3))

    out["ctypes"] = ctypes.CDLL(None).strlen(b"hello")
    out["sha256"] = hashlib.sha256(b"x").hexdigest()[:8]
    out["ssl"] = ssl.create_default_context().verify_mode == ssl.CERT_REQUIRED
    db = sqlite3.connect(":memory:")
    db.execute("create table t (v integer)")
    db.executemany("insert into t values (?)", [(i,) for i in range(10)])
    out["sqlite"] = db.execute("select sum(v) from t").fetchone()[0]

    results = []
    t = threading.Thread(target=lambda: results.append(sum(range(100))))
    t.start()
    t.join()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results.extend(pool.map(lambda n: n * n, [3, 4]))
    out["threads"] = results

    time.sleep(0.01)
    out["random"] = 0 <= random.random() < 1 and len(str(uuid.uuid4())) == 36
    out["zoneinfo"] = str(zoneinfo.ZoneInfo("UTC"))
    logging.getLogger("workloads").warning("logging works")
    try:
        json.loads("{")
    except ValueError:
        out["traceback"] = "JSONDecodeError" in traceback.format_exc()
    big = bytearray()
    for _ in range(64):
        big += bytes(1 << 20)
    out["bytearray_mib"] = len(big) >> 20
    return out
