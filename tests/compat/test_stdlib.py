"""Standard-library workloads real plugins run, under `default` plus a
scratch directory (stdlibwork.policy, written by conftest.py): the plugin
guide's recipe for a plugin that needs temporary files."""

import json
import re

import pytest

from debvendor import DIST_PACKAGES
from pbtest import EXIT_OK, explain, result_of


@pytest.fixture(scope="module")
def stdlibwork(build_plugin, compat_policies, plugbox):
    plugins = build_plugin("stdlibwork", ["python3-msgpack"])

    def run(function, *args):
        cp = plugbox.call(plugins, "stdlibwork", function, *[json.dumps(a) for a in args],
                          options=("--policies", compat_policies), timeout=90)
        assert cp.returncode == EXIT_OK, explain(cp)
        return result_of(cp)
    return run


def test_ctypes_callback_through_libc_qsort(stdlibwork):
    assert stdlibwork("ctypes_qsort", [5, -1, 4, 2, 3, 0]) == {"sorted": [-1, 0, 2, 3, 4, 5], "callbacks": True}


def test_uuid1(stdlibwork):
    assert stdlibwork("uuid1") == {"version": 1, "variant": "specified in RFC 4122",
                                   "distinct": True, "ordered": True}


def test_thread_pool_of_16_threads_all_alive_at_once(stdlibwork):
    assert stdlibwork("thread_pool", 16) == {"sum": sum(i * i for i in range(16)), "threads": 16}


def test_asyncio_run_in_executor(stdlibwork):
    assert stdlibwork("asyncio_executor") == [0, 2, 4, 6, 8]


def test_sqlite3_file_fsync_and_atomic_rename_in_scratch(stdlibwork):
    r = stdlibwork("sqlite_file")
    # /tmp, or /var/tmp when the plugin itself lives under /tmp
    assert r["dir"].startswith(("/tmp/", "/var/tmp/")), r
    assert r["sum"] == 4950 and r["state"] == '{"saved": true}' and r["tmp_gone"], r


def test_shutil_copy2_in_scratch(stdlibwork):
    assert stdlibwork("copy2") == {"same": True, "mtime": 1_000_000_000.0, "size": 100000}


def test_mmap_flush_in_scratch(stdlibwork):
    assert stdlibwork("mmap_flush") == "hello mmap!"


def test_zoneinfo(stdlibwork):
    assert stdlibwork("zoneinfo") == ["1:00:00", "2:00:00", "2024-03-31T03:30:00+02:00"]


def test_locale(stdlibwork):
    r = stdlibwork("locale_c")
    assert r == {"setlocale": "C.UTF-8", "encoding": "utf-8", "formatted": "1234.50",
                 "sorted": ["A", "B", "a", "b"]}


def test_importlib_resources_and_metadata_of_a_vendored_distribution(stdlibwork):
    info = next(DIST_PACKAGES.glob("msgpack-*-info"))
    version = re.search(r"^Version: (\S+)", (info / ("PKG-INFO" if (info / "PKG-INFO").exists() else "METADATA"))
                        .read_text(), re.M).group(1)
    assert stdlibwork("resources_and_metadata") == {
        "data": "plugbox compat data: 42", "msgpack_version": version, "msgpack_module_version": version}
