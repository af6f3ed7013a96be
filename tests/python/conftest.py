"""Fixtures for the tests of the Python host package `plugbox` (python/).

run.sh (from `make check`) puts an importable copy of the package on
PYTHONPATH and exports:

    PLUGBOX_WORKER, PLUGBOX_POLICIES   the built worker and the shipped policies
    PB_TEST_SRCDIR, PB_TEST_BUILDDIR   tests/ in the source and the build tree

Plugins come from tests/plugins (read-only, used in place) and
tests/python/plugins; whatever a test creates goes under
PB_TEST_BUILDDIR/tmp/python, readable by any uid (a worker started by root
runs as its own uid and must read copied plugins and policies).
"""

import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from pbpy import TEST_TIMEOUT, wait_until, worker_pids  # noqa: E402

from plugbox.pytest import _readable  # noqa: E402  (the package's own: the same need)

# Plugins' own test suites (plugins/authored/tests) run inside their
# workers through plugbox.pytest, never on this host.
collect_ignore = ["plugins"]


def pytest_configure(config):
    for var in ("PLUGBOX_WORKER", "PLUGBOX_POLICIES", "PB_TEST_SRCDIR", "PB_TEST_BUILDDIR"):
        if not os.environ.get(var):
            raise pytest.UsageError(f"{var} is not set: run these tests through `make check` "
                                    "(tests/python/run.sh)")


# The package's own tests (not the example framework's, which has its own
# rules): a callback's exception that nobody saw, or a supervisor nobody
# closed, is a bug in the package and fails the test that caused it.
STRICT = [pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning"),
          pytest.mark.filterwarnings("error::ResourceWarning")]
OTHERS = {"test_example_framework.py"}


def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.name not in OTHERS:
            for mark in STRICT:
                item.add_marker(mark)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)


@pytest.fixture(scope="session")
def paths():
    src = Path(os.environ["PB_TEST_SRCDIR"])
    plugins = src / "plugins"
    return SimpleNamespace(
        srcdir=src,
        plugins=plugins,
        seed=plugins / "seed",
        features=plugins / "features",
        runtime=plugins / "runtime",
        hooks=plugins / "hooks",
        hostile=plugins / "hostile",
        policy=plugins / "policy",
        channel=plugins / "channel",
        badconfig=plugins / "badconfig",
        own=src / "python" / "plugins",
        shipped_policies=Path(os.environ["PLUGBOX_POLICIES"]),
        test_policies=src / "policies",
        scratch_root=Path(os.environ["PB_TEST_BUILDDIR"]) / "tmp" / "python",
    )


# copies of a read-only source tree (distcheck) stay read-only otherwise
_readable_tree = _readable


@pytest.fixture
def scratch(request, paths):
    """A fresh directory for this test, readable by any uid; removed if the
    test passes."""
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
    """copy_plugins({dest_name: source_dir, ...}) -> a plugins directory
    holding those copies."""
    def copy(mapping, dest="plugins"):
        target = scratch / dest
        target.mkdir(exist_ok=True)
        for name, src in mapping.items():
            shutil.copytree(src, target / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        _readable_tree(target)
        return target
    return copy


@pytest.fixture
def policies(scratch, paths):
    """policies(extra=None, test_set=None) -> a directory with copies of the
    shipped policies, then tests/policies/TEST_SET/*.policy, then extra
    ({name: text}, written as NAME.policy)."""
    count = [0]

    def make(extra=None, test_set=None):
        count[0] += 1
        target = scratch / f"policies-{count[0]}"
        target.mkdir()
        for f in sorted(paths.shipped_policies.glob("*.policy")):
            shutil.copy(f, target / f.name)
        if test_set:
            own = sorted((paths.test_policies / test_set).glob("*.policy"))
            assert own, f"tests/policies/{test_set} holds no policy"
            for f in own:
                shutil.copy(f, target / f.name)
        for name, text in (extra or {}).items():
            (target / f"{name}.policy").write_text(text)
        _readable_tree(target)
        return target
    return make


@pytest.fixture
def supervisor():
    """supervisor(plugins_dir, policies_dir=None, **kw) -> an open
    plugbox.Supervisor (timeout TEST_TIMEOUT unless given), closed after the
    test, which must leave no worker behind."""
    import plugbox
    opened = []

    def make(plugins_dir, policies_dir=None, **kw):
        kw.setdefault("timeout", TEST_TIMEOUT)
        sup = plugbox.Supervisor(plugins_dir, policies_dir, **kw)
        opened.append(sup)
        return sup
    yield make
    for sup in opened:
        sup.close()
    assert wait_until(lambda: not worker_pids(), 5), f"workers left behind: {worker_pids()}"
