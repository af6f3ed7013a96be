"""The per-plugin bytecode cache: built only by the sandboxed compiler,
read-only to the plugin's own worker, invisible to every other plugin,
checked pyc by pyc against the sources, and never a reason for a plugin not
to start.

What a worker loaded from where is observed from inside it: the test
plugins (tests/plugins/cache/) install an audit hook that records every
compile() of a source file, and report each module's __spec__.cached.
"""

import importlib.util
import json
import os
import shutil
import stat
import struct
import time
from importlib import _bootstrap_external as bx
from pathlib import Path

import pytest

from pbserve import serve, sockdir  # noqa: F401 (fixtures)
from pbtest import EXIT_OK, EXIT_USAGE, explain, result_of, scaled, x86_64_only

INSIDE = "/plugbox/cache/"


@pytest.fixture
def cache_plugins(paths, copy_plugins):
    """cache_plugins(*names) -> a writable copy of those plugins of tests/plugins/cache."""
    return lambda *names: copy_plugins(paths.plugins / "cache", only=list(names))


@pytest.fixture
def policies(policies_with):
    """policies(**files) -> a copy of the shipped policies with NAME.policy files added."""
    return policies_with


def tree(plugins, name, root=None):
    return Path(root or Path(plugins) / ".plugbox" / "cache") / name / "tree"


def host_path(plugins, name, inside, root=None):
    """Where a pyc a worker sees at `inside` is on the host."""
    assert inside.startswith(INSIDE), inside
    return tree(plugins, name, root) / inside[len(INSIDE):]


def probe(plugbox, plugins, *modules, options=()):
    cp = plugbox.call(plugins, "cached", "probe", *[json.dumps(m) for m in modules], options=options)
    assert cp.returncode == EXIT_OK, explain(cp)
    return result_of(cp)


def files_below(top):
    found = {}
    for dirpath, _, names in os.walk(top):
        for n in names:
            p = os.path.join(dirpath, n)
            found[p] = Path(p).read_bytes()
    return found


def pyc_flags(path):
    return struct.unpack("<I", Path(path).read_bytes()[4:8])[0]


def cache_ok(plugbox, plugins, *args):
    cp = plugbox.run(["cache", "--plugins", plugins, *args])
    assert cp.returncode == EXIT_OK, explain(cp)
    return cp.stdout


# ---- a cache is used ---------------------------------------------------------

def test_second_start_loads_vendored_modules_from_the_cache(plugbox, cache_plugins):
    plugins = cache_plugins("cached")
    deps = plugins / "cached" / "deps" / "vendlib"

    first = probe(plugbox, plugins, "vendlib", "vendlib.util")
    assert sorted(first["compiled"]) == [str(deps / "__init__.py"), str(deps / "util.py")], first
    # `plugbox call` waited for the build its worker's start queued.
    assert (tree(plugins, "cached")).is_dir()
    stamp = (tree(plugins, "cached").parent / "stamp").read_text()
    assert str(plugins / "cached") in stamp

    second = probe(plugbox, plugins, "vendlib", "vendlib.util")
    assert second["compiled"] == [], second
    for name, value in (("vendlib", "vendlib 1"), ("vendlib.util", "util 1")):
        module = second["modules"][name]
        assert module["value"] == value
        assert module["cached"].startswith(INSIDE) and module["pyc_exists"], module
        pyc = host_path(plugins, "cached", module["cached"])
        assert pyc.is_file() and pyc_flags(pyc) == 0b11, pyc     # checked-hash (PEP 552)
        assert stat.S_IMODE(pyc.stat().st_mode) == 0o644
    # The package's own modules through its import root, too.
    assert second["own_cached"] == INSIDE + "plugbox/import/cached/__init__.cpython-311.pyc"
    assert host_path(plugins, "cached", second["own_cached"]).is_file()
    # Only this plugin's sources are in its cache; the file with a syntax
    # error was skipped, and the compiler never imported anything.
    pycs = [str(p.relative_to(tree(plugins, "cached"))) for p in tree(plugins, "cached").rglob("*.pyc")]
    own = str(plugins / "cached").lstrip("/")
    assert sorted(pycs) == sorted([f"{own}/__init__.cpython-311.pyc",
                                   "plugbox/import/cached/__init__.cpython-311.pyc"] +
                                  [f"{own}/deps/vendlib/{m}.cpython-311.pyc" for m in ("__init__", "marker", "util")])


def test_path_layout_is_cached_too(plugbox, cache_plugins):
    plugins = cache_plugins("pathcached")
    first = plugbox.call_ok(plugins, "pathcached", "pathmod:probe")
    assert first["compiled"] == [str(plugins / "pathcached" / "pathhelper.py")], first
    second = plugbox.call_ok(plugins, "pathcached", "pathmod:probe")
    assert second["compiled"] == [] and second["value"] == "path helper", second
    assert host_path(plugins, "pathcached", second["cached"]).is_file()
    assert host_path(plugins, "pathcached", second["self_cached"]).is_file()


def test_syntax_error_skips_that_file_and_cache_command_reports_it(plugbox, cache_plugins):
    plugins = cache_plugins("cached", "pathcached")
    out = cache_ok(plugbox, plugins)
    assert out == "cached: cached 4 modules (1 files skipped)\npathcached: cached 2 modules (0 files skipped)\n"
    deps = tree(plugins, "cached") / str(plugins / "cached" / "deps" / "vendlib").lstrip("/")
    assert (deps / "util.cpython-311.pyc").is_file()
    assert not (deps / "broken.cpython-311.pyc").exists()
    cp = plugbox.run(["cache", "--plugins", plugins, "nosuch"])
    assert cp.returncode == EXIT_USAGE and "no plugin 'nosuch'" in cp.stderr, explain(cp)


# ---- who may write it, who may see it --------------------------------------------

@x86_64_only
def test_worker_cannot_write_its_cache_nor_see_another_plugins(plugbox, cache_plugins, policies):
    plugins = cache_plugins("cached", "scribbler")
    # Seccomp lets every one of these calls through: only the walls of the
    # file system (the read-only bind, Landlock) can stop them.
    pol = policies(scribbler="openat: 1\nmkdirat: 1\n@file-write: 1\n@include default\n")
    opts = ["--policies", pol]
    cache_ok(plugbox, plugins, "--policies", pol)
    before = {name: files_below(tree(plugins, name)) for name in ("cached", "scribbler")}

    own = plugbox.call_ok(plugins, "scribbler", "own_pyc", options=opts)
    assert own.startswith(INSIDE) and own in [p.replace(str(tree(plugins, "scribbler")), INSIDE[:-1])
                                              for p in before["scribbler"]], own
    tried = plugbox.call_ok(plugins, "scribbler", "attempt", json.dumps(os.path.dirname(own)), json.dumps(own),
                            options=opts)
    assert set(tried.values()) <= {"EROFS", "EACCES"}, tried

    # Another plugin's cache, by its host path: not there at all.
    other = sorted(p for p in before["cached"] if p.endswith("util.cpython-311.pyc"))[0]
    tried = plugbox.call_ok(plugins, "scribbler", "attempt", json.dumps(os.path.dirname(other)), json.dumps(other),
                            options=opts)
    assert set(tried.values()) <= {"ENOENT", "EROFS", "EACCES"}, tried
    for on_the_file in ("python_rewrite", "openat_truncate", "openat_append", "unlinkat", "renameat", "fchmodat"):
        assert tried[on_the_file] == "ENOENT", tried
    assert plugbox.call_ok(plugins, "scribbler", "walk", json.dumps(str(tree(plugins, "cached"))),
                           options=opts) == "ENOENT"
    assert plugbox.call_ok(plugins, "scribbler", "walk", json.dumps(str(plugins / ".plugbox")),
                           options=opts) == "ENOENT"
    # What it sees of caches is its own, nothing of `cached`.
    seen = plugbox.call_ok(plugins, "scribbler", "walk", json.dumps(INSIDE), options=opts)
    assert sorted(seen) == sorted(INSIDE + p for p in ("plugbox/import/scribbler/__init__.cpython-311.pyc",
                                                      str(plugins / "scribbler").lstrip("/") +
                                                      "/__init__.cpython-311.pyc")), seen

    assert {name: files_below(tree(plugins, name)) for name in ("cached", "scribbler")} == before


def test_poisoned_pycs_are_never_run(plugbox, cache_plugins):
    plugins = cache_plugins("cached")
    cache_ok(plugbox, plugins)
    source_path = plugins / "cached" / "deps" / "vendlib" / "marker.py"
    source = source_path.read_bytes()
    pyc = tree(plugins, "cached") / str(source_path.parent).lstrip("/") / "marker.cpython-311.pyc"
    assert pyc.is_file()
    poison = compile("VALUE = 'POISONED'\n", str(source_path), "exec")
    st = source_path.stat()
    planted = {
        # checked-hash, but the hash of other source
        "wrong hash": bx._code_to_hash_pyc(poison, importlib.util.source_hash(b"VALUE = 'POISONED'\n"), True),
        # unchecked-hash: Python would not look at the source at all
        "unchecked": bx._code_to_hash_pyc(poison, importlib.util.source_hash(source), False),
        # timestamp-based, with the source's own mtime and size
        "timestamp": bx._code_to_timestamp_pyc(poison, int(st.st_mtime), st.st_size),
        # the right header, a body that does not load
        "damaged": bx._code_to_hash_pyc(compile(source, str(source_path), "exec"),
                                        importlib.util.source_hash(source), True)[:16] + b"\xff\x00garbage",
    }
    for what, data in planted.items():
        pyc.write_bytes(data)
        result = probe(plugbox, plugins, "vendlib.marker")
        assert result["modules"]["vendlib.marker"]["value"] == "marker clean", (what, result)
        assert result["compiled"] == [str(source_path)], (what, result)


def test_edited_source_runs_at_once_and_the_cache_follows(plugbox, cache_plugins):
    plugins = cache_plugins("cached")
    cache_ok(plugbox, plugins)
    util = plugins / "cached" / "deps" / "vendlib" / "util.py"
    stamp = tree(plugins, "cached").parent / "stamp"
    was = stamp.read_text()

    # In place, deep in a dependency: the stale pyc fails its hash check.
    util.write_text(util.read_text().replace("util 1", "util 2"))
    result = probe(plugbox, plugins, "vendlib", "vendlib.util")
    assert result["modules"]["vendlib.util"]["value"] == "util 2"
    assert result["compiled"] == [str(util)], result
    # `plugbox cache` brings the cache up to date.
    assert cache_ok(plugbox, plugins, "cached") == "cached: cached 4 modules (1 files skipped)\n"
    result = probe(plugbox, plugins, "vendlib.util")
    assert result["compiled"] == [] and result["modules"]["vendlib.util"]["value"] == "util 2", result

    # A file of the plugin directory replaced, as editors and installers do:
    # the directory changed, and the next start rebuilds by itself.
    init = plugins / "cached" / "__init__.py"
    (plugins / "cached" / "__init__.py.new").write_text(init.read_text() + "\n# edited\n")
    os.replace(plugins / "cached" / "__init__.py.new", init)
    before = stamp.read_text()
    probe(plugbox, plugins, "vendlib.util")
    assert stamp.read_text() not in (was, before)
    result = probe(plugbox, plugins, "vendlib.util")
    assert result["compiled"] == [], result
    pyc = host_path(plugins, "cached", result["own_cached"])
    assert importlib.util.source_hash(init.read_bytes()) == pyc.read_bytes()[8:16]


# ---- when it is not built, and when it is not used ---------------------------------

def test_compiler_over_its_limits_leaves_the_plugin_working_uncached(plugbox, cache_plugins, policies):
    plugins = cache_plugins("cached")
    huge = plugins / "cached" / "deps" / "vendlib" / "huge.py"
    huge.write_text("".join(f"def f{i}(a, b):\n    return [a + {i}, b * {i}, (a, b, {i})]\n"
                            for i in range(60000)))
    pol = policies(compile="@include install\n@limit call-time 1s\n")
    opts = ["--policies", pol]

    cp = plugbox.call(plugins, "cached", "probe", '"vendlib.util"', options=opts, timeout=120)
    assert cp.returncode == EXIT_OK, explain(cp)
    assert result_of(cp)["modules"]["vendlib.util"]["value"] == "util 1"
    assert ("plugbox: plugin 'cached': bytecode cache not built (the plugin runs uncached): the compiler timed "
            "out after 1 s") in cp.stderr, explain(cp)
    assert not (tree(plugins, "cached")).exists()
    # Nothing of the killed build is left but the mark that it failed.
    assert sorted(p.name for p in (plugins / ".plugbox" / "cache" / ".build").iterdir()) == \
        ["cached.failed", "cached.lock"]

    # Not tried again until the plugin changes: the next start is quick and quiet.
    cp = plugbox.call(plugins, "cached", "probe", '"vendlib.util"', options=opts)
    assert cp.returncode == EXIT_OK and "bytecode cache" not in cp.stderr, explain(cp)
    assert str(plugins / "cached" / "deps" / "vendlib" / "util.py") in result_of(cp)["compiled"]


def test_no_cache_writes_nothing_and_cache_dir_moves_it(plugbox, cache_plugins, scratch):
    plugins = cache_plugins("cached")
    for _ in range(2):
        result = probe(plugbox, plugins, "vendlib.util", options=["--no-cache"])
        assert result["compiled"], result
    cp = plugbox.run(["list", "--plugins", plugins, "--no-cache", "--workers"])
    assert cp.returncode == EXIT_OK, explain(cp)
    assert not (plugins / ".plugbox").exists()

    root = scratch / "elsewhere"
    probe(plugbox, plugins, "vendlib.util", options=["--cache", root])
    result = probe(plugbox, plugins, "vendlib.util", options=["--cache", root])
    assert result["compiled"] == [] and host_path(plugins, "cached", result["modules"]["vendlib.util"]["cached"],
                                                   root=root).is_file()
    assert not (plugins / ".plugbox").exists()
    cp = plugbox.call(plugins, "cached", "probe", options=["--cache", root, "--no-cache"])
    assert cp.returncode == EXIT_USAGE, explain(cp)


def test_a_cache_directory_others_may_write_is_not_used(plugbox, cache_plugins, scratch):
    plugins = cache_plugins("cached")
    root = scratch / "shared"
    root.mkdir()
    os.chmod(root, 0o777)
    for _ in range(2):
        result = probe(plugbox, plugins, "vendlib.util", options=["--cache", root])
        assert result["compiled"], result
    assert list(root.iterdir()) == []


# ---- install, upgrade, remove, and a long-running supervisor -------------------------

def test_install_builds_the_cache_and_remove_deletes_it(plugbox, paths, scratch):
    plugins = scratch / "plugins"
    plugins.mkdir()
    source = scratch / "src" / "cached"
    shutil.copytree(paths.plugins / "cache" / "cached", source, ignore=shutil.ignore_patterns("__pycache__"))
    cp = plugbox.run(["install", "--plugins", plugins, source])
    assert (cp.returncode, cp.stdout, cp.stderr) == (EXIT_OK, "installed cached\n", ""), explain(cp)
    built = (tree(plugins, "cached").parent).stat().st_ino
    # The first start of what was installed is warm, and rebuilds nothing.
    result = probe(plugbox, plugins, "vendlib", "vendlib.util")
    assert result["compiled"] == [] and result["modules"]["vendlib.util"]["value"] == "util 1", result
    assert tree(plugins, "cached").parent.stat().st_ino == built

    # An upgrade gets a cache of its own, never a mix with the old one.
    util = source / "deps" / "vendlib" / "util.py"
    util.write_text(util.read_text().replace("util 1", "util 3"))
    cp = plugbox.run(["install", "--plugins", plugins, source])
    assert cp.returncode == EXIT_OK and cp.stderr == "", explain(cp)
    assert tree(plugins, "cached").parent.stat().st_ino != built
    result = probe(plugbox, plugins, "vendlib.util")
    assert result["compiled"] == [] and result["modules"]["vendlib.util"]["value"] == "util 3", result

    cp = plugbox.run(["remove", "--plugins", plugins, "cached"])
    assert (cp.returncode, cp.stdout, cp.stderr) == (EXIT_OK, "removed cached\n", ""), explain(cp)
    assert not (plugins / ".plugbox" / "cache" / "cached").exists()
    assert [p.name for p in (plugins / ".plugbox" / "cache" / ".build").iterdir()] == ["cached.lock"]


def test_serve_builds_in_the_background_for_the_next_worker(plugbox, cache_plugins, serve):  # noqa: F811
    plugins = cache_plugins("cached")
    d = serve(plugins, "--idle-stop", "1")
    conn = d.conn()

    def call(id):
        conn.call(id, "cached", "probe", "vendlib.util")
        reply = conn.recv(timeout=scaled(60))
        assert reply["body"] == "result", (reply, d.stderr())
        return reply["value"]

    assert call(1)["compiled"], d.stderr()
    deadline = time.monotonic() + scaled(30)
    while not (tree(plugins, "cached").parent / "stamp").exists():
        assert time.monotonic() < deadline, d.stderr()
        time.sleep(0.05)
    # The worker that started cold is stopped when idle; the next one is warm.
    while "stopping the worker" not in d.stderr():
        assert time.monotonic() < deadline, d.stderr()
        time.sleep(0.05)
    assert call(2)["compiled"] == [], d.stderr()
    conn.close()
