"""The package as tools see it once installed: a dist-info that
importlib.metadata and pip read, PEP 561's py.typed, a stub for the C
extension that names what the extension has, and a generic HookResult."""

import ast
import inspect
import json
import os
import subprocess
import sys
import typing
from pathlib import Path

import pytest

import plugbox
from plugbox import _core

TOP_SRCDIR = Path(os.environ["PB_TOP_SRCDIR"])
TOP_BUILDDIR = Path(os.environ["PB_TOP_BUILDDIR"])


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The Python package installed by its own make rules into a DESTDIR:
    the directory holding plugbox/ and plugbox-VERSION.dist-info/."""
    dest = tmp_path_factory.mktemp("destdir")
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    cp = subprocess.run(["make", "-s", "-C", str(TOP_BUILDDIR), f"DESTDIR={dest}",
                         "install-pkgpyexecPYTHON", "install-dist_pkgpyexecDATA",
                         "install-pkgpyexecLTLIBRARIES", "install-data-local"],
                        env=env, capture_output=True, text=True, timeout=300)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    infos = list(dest.rglob("plugbox-*.dist-info"))
    assert len(infos) == 1, infos
    return infos[0].parent


def _python(site, code):
    env = dict(os.environ, PYTHONPATH=str(site))
    cp = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    return cp.stdout.strip()


def test_importlib_metadata_knows_the_installed_version(installed):
    version = _python(installed, "import importlib.metadata as m, plugbox; "
                                 "print(m.version('plugbox'), plugbox.__version__, plugbox.__file__)")
    meta, module, where = version.split()
    assert meta == module == plugbox.__version__
    assert where.startswith(str(installed))   # the installed copy, not the tests' one


def test_pip_lists_the_installed_package(installed):
    cp = subprocess.run([sys.executable, "-m", "pip", "list", "--path", str(installed), "--format=json"],
                        capture_output=True, text=True, timeout=120)
    assert cp.returncode == 0, cp.stderr
    assert {"name": "plugbox", "version": plugbox.__version__} in json.loads(cp.stdout)


def test_record_lists_what_was_installed(installed):
    info = next(installed.glob("plugbox-*.dist-info"))
    listed = {line.split(",")[0] for line in (info / "RECORD").read_text().splitlines()}
    present = {str(p.relative_to(installed)) for p in installed.rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert listed == present


def test_py_typed_and_the_core_stub_are_installed(installed):
    assert (installed / "plugbox" / "py.typed").is_file()
    assert (installed / "plugbox" / "_core.pyi").is_file()


def _stub():
    return ast.parse((TOP_SRCDIR / "python" / "plugbox" / "_core.pyi").read_text())


def _defined(body):
    names = set()
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign):
            names.add(node.target.id)
    return names


def test_the_core_stub_names_what_the_extension_has():
    """Every public name of _core and of its two classes is in the stub, and
    the stub names nothing the extension lacks."""
    tree = _stub()
    have = {n for n in dir(_core) if not n.startswith("__")} | {"__version__"}
    assert _defined(tree.body) == have
    for cls in tree.body:
        if isinstance(cls, ast.ClassDef):
            real = getattr(_core, cls.name)
            public = {n for n in dir(real) if not n.startswith("__")}
            assert _defined(cls.body) - {"__init__"} == public, cls.name


def test_hook_result_is_generic():
    alias = plugbox.HookResult[int]
    assert typing.get_origin(alias) is plugbox.HookResult
    assert typing.get_args(alias) == (int,)
    assert isinstance(inspect.signature(plugbox.HookResult.result).return_annotation, typing.TypeVar)
    r = plugbox.HookResult[int]("p", "n", 3)
    assert r.result() == 3 and r.ok
