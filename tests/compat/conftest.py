"""Fixtures for the compatibility suite (tests/compat, run by
tests/compat/run.sh from `make check` and `make compat-check-plugins`).

Plugins are built at test time under PB_TEST_BUILDDIR/tmp/compat: the
plugin's own source from tests/compat/plugins/, and in its deps/ the Debian
packages it names, taken from /usr/lib/python3/dist-packages with their
Python dependencies (debvendor.py). Nothing vendored is in the tree.

A test whose Debian packages are not installed is skipped and says which
(`apt-get install ...`); with PB_COMPAT_REQUIRE=1 (set by .ci/run, which
installs them) a missing package fails the test instead.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from pbtest import Plugbox  # noqa: E402

import debvendor  # noqa: E402

HERE = Path(__file__).resolve().parent

# A plugin that asks its operator for a temporary directory, as
# docs/plugin-guide.md says to: write access only to its private /tmp.
SCRATCH_POLICY = """\
# compat: `default` plus a private scratch directory at /tmp.
openat: 1
@file-write: 1
@scratch 64M
@include default
"""


def pytest_configure(config):
    if not os.environ.get("PLUGBOX"):
        raise pytest.UsageError(
            "PLUGBOX is not set: run the compatibility suite through `make check` or "
            "`make compat-check-plugins` (tests/compat/run.sh)")


@pytest.fixture(scope="session")
def plugbox():
    return Plugbox(os.environ["PLUGBOX"], dict(os.environ))


@pytest.fixture(scope="session")
def compat_root():
    base = Path(os.environ.get("PB_TEST_BUILDDIR") or tempfile.mkdtemp(prefix="plugbox-compat-")) / "tmp"
    base.mkdir(parents=True, exist_ok=True)
    os.chmod(base, 0o755)
    root = Path(tempfile.mkdtemp(prefix="compat-", dir=base))
    os.chmod(root, 0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def compat_policies(compat_root):
    """The shipped policies plus stdlibwork.policy (scratch)."""
    shipped = Path(os.environ.get("PLUGBOX_POLICIES") or HERE.parents[1] / "policies")
    target = compat_root / "policies"
    shutil.copytree(shipped, target)
    (target / "stdlibwork.policy").write_text(SCRATCH_POLICY)
    for dirpath, _, filenames in os.walk(target):
        os.chmod(dirpath, 0o755)
        for f in filenames:
            os.chmod(os.path.join(dirpath, f), 0o644)
    return target


def require_packages(packages):
    """Skip (or fail under PB_COMPAT_REQUIRE=1) unless every package is installed."""
    missing = debvendor.missing(packages)
    if missing:
        message = ("Debian package(s) not installed: " + " ".join(missing) +
                   " (apt-get install " + " ".join(missing) + ")")
        if os.environ.get("PB_COMPAT_REQUIRE") == "1":
            pytest.fail(message + "; PB_COMPAT_REQUIRE=1 says they must be")
        pytest.skip(message)


@pytest.fixture(scope="session")
def build_plugin(compat_root):
    """build_plugin(name, debian_packages) -> the plugin set directory holding
    the plugin `name` with those packages (and their Python dependencies)
    vendored in its deps/. Built once per session."""
    built = {}

    def build(name, packages):
        require_packages(packages)
        if name not in built:
            plugins = compat_root / "plugins"
            plugins.mkdir(exist_ok=True)
            os.chmod(plugins, 0o755)
            dest = plugins / name
            shutil.copytree(HERE / "plugins" / name, dest, ignore=shutil.ignore_patterns("__pycache__"))
            for dirpath, _, filenames in os.walk(dest):
                os.chmod(dirpath, 0o755)
                for f in filenames:
                    os.chmod(os.path.join(dirpath, f), 0o644)
            # Vendored files are hard links to /usr's: never chmod them.
            built[name] = (plugins, debvendor.vendor(packages, dest / "deps"))
        return built[name][0]
    return build
