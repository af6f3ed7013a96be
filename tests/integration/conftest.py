"""Fixtures for plugbox's integration tests.

The tests drive the built `plugbox` command (run by tests/integration/run.sh
from `make check`), which reads these variables:

    PLUGBOX           absolute path of the built plugbox command (required)
    PLUGBOX_WORKER    absolute path of the built worker (plugbox reads it)
    PB_TEST_SRCDIR    tests/ in the source tree (read-only under distcheck)
    PB_TEST_BUILDDIR  tests/ in the build tree (writable)
    PB_CC, PB_PYTHON_CFLAGS  compiler and flags for the C extension test

Anything a test creates (copies of plugin sets, the compiled extension,
marker directories) goes under PB_TEST_BUILDDIR/tmp, never into the source
tree. Those directories are made here rather than with pytest's tmp_path
because pytest creates its base temporary directory mode 0700 (run.sh's
--basetemp included): a worker that drops to an unprivileged uid, as plugbox
does when started as root, could not read plugins copied there.
Scratch directories of passing tests are removed; those of failing tests are
kept for inspection (`make clean` removes tests/tmp).
"""

import os
import re
import shutil
import socket
import sysconfig
import tempfile
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from pbtest import Plugbox


def pytest_configure(config):
    if not os.environ.get("PLUGBOX"):
        raise pytest.UsageError(
            "PLUGBOX is not set: run the integration tests through `make check` "
            "(tests/integration/run.sh), or set PLUGBOX and PLUGBOX_WORKER to the built binaries")


def pytest_collection_modifyitems(config, items):
    """PB_TEST_SAMPLE=N runs one test in N of each module (its 1st, N+1st,
    ...). For `make distcheck` in CI only: the whole suite has run on the
    same commit just before, and what distcheck asks is whether the
    tarball builds and ships what the tests need (CI also compares the
    tarball's list of files with git's)."""
    n = int(os.environ.get("PB_TEST_SAMPLE") or 1)
    if n <= 1:
        return
    keep, left, seen = [], [], {}
    for item in items:
        k = seen.get(item.nodeid.split("::")[0], 0)
        seen[item.nodeid.split("::")[0]] = k + 1
        (keep if k % n == 0 else left).append(item)
    config.hook.pytest_deselected(items=left)
    items[:] = keep


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)


@pytest.fixture(scope="session")
def paths():
    srcdir = Path(os.environ.get("PB_TEST_SRCDIR") or Path(__file__).resolve().parents[1])
    builddir = Path(os.environ.get("PB_TEST_BUILDDIR") or tempfile.mkdtemp(prefix="plugbox-tests-"))
    plugins = srcdir / "plugins"
    return SimpleNamespace(
        srcdir=srcdir,
        builddir=builddir,
        plugins=plugins,
        seed=plugins / "seed",
        features=plugins / "features",
        hostile=plugins / "hostile",
        badconfig=plugins / "badconfig",
        cext=plugins / "cext",
        cext_src=plugins / "cext-src",
        realworld=plugins / "realworld",
        examples=srcdir.parent / "examples" / "plugins",
        scratch_root=builddir / "tmp",
    )


@pytest.fixture(scope="session")
def plugbox():
    """The runner: plugbox.run(args, timeout=60) -> CompletedProcess (text),
    plus call(), call_ok() and list() shorthands (see pbtest.Plugbox)."""
    return Plugbox(os.environ["PLUGBOX"], dict(os.environ))


def _make_tree_writable(root):
    # Copies of a read-only source tree (distcheck) stay read-only otherwise.
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, 0o644)


@pytest.fixture
def scratch(request, paths):
    """A fresh directory for this test, readable by any uid."""
    paths.scratch_root.mkdir(parents=True, exist_ok=True)
    os.chmod(paths.scratch_root, 0o755)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)[:80]
    path = Path(tempfile.mkdtemp(prefix=name + "-", dir=paths.scratch_root))
    os.chmod(path, 0o755)
    yield path
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.passed:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def copy_plugins(scratch):
    """copy_plugins(src_set, only=None, dest="plugins") -> Path of a writable
    copy of the plugin set src_set (optionally only the named plugins)."""
    def copy(src_set, only=None, dest="plugins"):
        target = scratch / dest
        target.mkdir(exist_ok=True)
        names = only if only is not None else sorted(os.listdir(src_set))
        for name in names:
            shutil.copytree(Path(src_set) / name, target / name, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__"))
        _make_tree_writable(target)
        return target
    return copy


@pytest.fixture
def policies_with(paths, scratch):
    """policies_with(extra=None, **files) -> a copy of the shipped policies
    ($PLUGBOX_POLICIES), plus tests/policies/EXTRA/*.policy, plus a
    NAME.policy holding TEXT for each NAME=TEXT; readable by any uid."""
    def make(extra=None, **files):
        target = scratch / "policies"
        shipped = Path(os.environ.get("PLUGBOX_POLICIES") or paths.srcdir.parent / "policies")
        shutil.copytree(shipped, target, dirs_exist_ok=True)
        if extra:
            for f in (paths.srcdir / "policies" / extra).glob("*.policy"):
                shutil.copy(f, target / f.name)
        for name, text in files.items():
            (target / f"{name}.policy").write_text(text)
        os.chmod(target, 0o755)
        for f in target.iterdir():
            os.chmod(f, 0o644)
        return target
    return make


@pytest.fixture
def open_dir(scratch):
    """open_dir(name) -> a world-writable directory: an attempt to write there
    fails only because of the sandbox, never because of file permissions."""
    def make(name):
        path = scratch / name
        path.mkdir()
        os.chmod(path, 0o777)
        return path
    return make


@pytest.fixture
def ext_suffix():
    """.cpython-311-x86_64-linux-gnu.so on Debian 12 / x86_64."""
    return sysconfig.get_config_var("EXT_SUFFIX")


class TcpListener:
    """A TCP listener on 127.0.0.1 that keeps what every connection sent."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.connections = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                data = b""
                try:
                    while chunk := conn.recv(4096):
                        data += chunk
                except OSError:
                    pass
                self.connections.append(data)

    def received(self):
        """Everything received, once every connection made so far is done."""
        self._stop.set()
        self._thread.join(10)
        return list(self.connections)

    def close(self):
        self._stop.set()
        self._thread.join(10)
        self.sock.close()


@pytest.fixture
def listener():
    lst = TcpListener()
    yield lst
    lst.close()
