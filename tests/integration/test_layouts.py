"""Plugin layouts and what a plugin can import: package and path layouts,
dependency directories (__deps_dir__, plugin.toml), exports, entry points,
object references, namespace packages, C extensions, real vendored
libraries, and the import path's isolation from the host and from siblings."""

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from pbtest import (DYNLOAD, EXIT_OK, EXIT_RAISED, STDLIB, assert_one_error_line,
                    assert_reported, explain, parse_list, result_of)

DIST_PACKAGES = Path("/usr/lib/python3/dist-packages")


# --- listing ---

def test_list_features(plugbox, paths):
    cp = plugbox.list(paths.features)
    assert cp.returncode == EXIT_OK, explain(cp)
    listed = parse_list(cp)
    assert listed["mytool"] == ("path", "1.0", {
        "console_scripts:mytool", "plugbox.demo:hello", "plugbox.demo:add"})
    assert listed["nspath"] == ("path", "1.0", {"plugbox.demo:parts"})
    assert listed["tomllist"] == ("package", "3.1.4", set())   # plugin.toml beats __version__
    assert listed["tomltable"] == ("package", "2.0", set())
    assert listed["echo"] == ("package", "", set())
    assert set(listed) >= {"echo", "raiser", "printer", "procstatus", "syspath", "isolated",
                           "nspkg", "decorated", "slow", "crasher", "threads", "brokenimport"}


def test_list_does_not_run_plugin_code(plugbox, paths):
    # printer prints at import time and brokenimport raises at import time:
    # listing reads metadata only.
    cp = plugbox.list(paths.features)
    assert cp.returncode == EXIT_OK, explain(cp)
    assert "printer imported" not in cp.stderr, explain(cp)
    assert "broken at import" not in cp.stderr, explain(cp)
    assert "brokenimport" in parse_list(cp)


def test_list_json(plugbox, paths):
    cp = plugbox.list(paths.features, as_json=True)
    assert cp.returncode == EXIT_OK, explain(cp)
    listed = {p["name"]: p for p in json.loads(cp.stdout)}

    mytool = listed["mytool"]
    assert mytool["layout"] == "path" and mytool["version"] == "1.0"
    eps = {(e["group"], e["name"], e["value"]) for e in mytool["entry_points"]}
    assert eps == {("console_scripts", "mytool", "mytool.cli:main"),
                   ("plugbox.demo", "hello", "mytool.cli:hello"),
                   ("plugbox.demo", "add", "mytool.cli:add")}
    # Path layout: the plugin directory itself is the import root.
    assert mytool["sys_path"][0].endswith("/mytool"), mytool["sys_path"]
    assert mytool["sys_path"][1:] == [STDLIB, DYNLOAD]

    nspath = listed["nspath"]
    assert nspath["sys_path"][0].endswith("/nspath")
    assert nspath["sys_path"][1].endswith("/deps")
    assert nspath["sys_path"][2:] == [STDLIB, DYNLOAD]

    assert listed["tomllist"]["exports"] == ["square", "version_info"]
    assert sorted(listed["tomltable"]["exports"]) == ["double", "shout"]
    assert listed["echo"]["version"] in ("", None)


# --- package layout: dependency directories and the import path ---

HOSTILE_ENV = {
    "FOO": "bar",
    "PYTHONPATH": str(DIST_PACKAGES),
    "PYTHONHOME": "/nonexistent",
    "PYTHONSTARTUP": "/nonexistent/startup.py",
    "PYTHONUSERBASE": "/tmp",
}


def test_sys_path_is_exactly_plugin_deps_stdlib(plugbox, paths):
    info = plugbox.call_ok(paths.features, "syspath", "info", env=HOSTILE_ENV)
    path = info["sys_path"]
    assert len(path) == 5, path
    # [0]: a directory whose only entry is the plugin itself.
    assert info["first_entry_listing"] == ["syspath"], info
    # [1], [2]: the two __deps_dir__ entries, absolute, in order.
    assert path[1].startswith("/") and path[1].endswith("/deps"), path
    assert path[2].startswith("/") and path[2].endswith("/vendor"), path
    assert info["dep_modules"] == [["deps", path[1]], ["vendor", path[2]]]
    # Then the standard library, and nothing else: no '', no cwd, no
    # site-packages / dist-packages, PYTHONPATH ignored.
    assert path[3:] == [STDLIB, DYNLOAD]
    assert "" not in path and os.getcwd() not in path
    assert not any("packages" in entry for entry in path), path


def test_list_json_sys_path_matches_the_workers(plugbox, paths):
    info = plugbox.call_ok(paths.features, "syspath", "info")
    cp = plugbox.list(paths.features, as_json=True)
    assert cp.returncode == EXIT_OK, explain(cp)
    listed = {p["name"]: p for p in json.loads(cp.stdout)}
    # sys.path[0] may be a directory made for each worker; the rest is fixed.
    assert listed["syspath"]["sys_path"][1:] == info["sys_path"][1:]


def test_plugin_toml_deps_win_over_deps_dir(plugbox, paths):
    info = plugbox.call_ok(paths.features, "tomlwins", "which")
    assert info["which"] == "newdeps (from plugin.toml)"
    assert any(p.endswith("/newdeps") for p in info["sys_path"]), info
    assert not any(p.endswith("/olddeps") for p in info["sys_path"]), info


def test_host_site_packages_not_importable(plugbox, paths):
    # PyYAML is installed on the host (python3-yaml), not in the plugin.
    if importlib.util.find_spec("yaml") is None:
        pytest.skip("PyYAML is not installed on the host: nothing to hide")
    cp = plugbox.call(paths.features, "isolated", "load_yaml")
    assert cp.returncode == EXIT_RAISED, explain(cp)
    assert "ModuleNotFoundError" in cp.stderr and "yaml" in cp.stderr, explain(cp)
    assert cp.stdout == ""


def test_import_error_in_referenced_module_is_the_plugins_exception(plugbox, paths):
    # The module exists; its own top-level import fails: that is the plugin
    # raising (exit 1), not a missing function (exit 2).
    cp = plugbox.call(paths.features, "isolated", "isolated.uses_yaml:dump", "{}")
    assert cp.returncode == EXIT_RAISED, explain(cp)
    assert "ModuleNotFoundError" in cp.stderr and "yaml" in cp.stderr, explain(cp)


def test_only_own_code_deps_and_stdlib_are_importable(plugbox, paths):
    # Modules this test process (Debian's python3) can import from the host's
    # dist-packages: the plugin must not see them.
    host_only = [name for name in ("yaml", "requests", "pytest", "apt", "six", "pluggy")
                 if importlib.util.find_spec(name) is not None]
    assert "pytest" in host_only
    siblings = ["syspath", "echo", "mytool", "depmod_a", "plug1"]  # other plugins, their deps
    own = ["isolated", "json", "sqlite3"]                           # itself and the stdlib
    found = plugbox.call_ok(paths.features, "isolated", "probe", json.dumps(own + host_only + siblings))
    assert found == {**{n: True for n in own}, **{n: False for n in host_only + siblings}}


# --- exports, object references, entry points ---

def test_decorator_exports(plugbox, paths):
    assert plugbox.call_ok(paths.features, "decorated", "plain") == "plain"
    assert plugbox.call_ok(paths.features, "decorated", "renamed") == "renamed"
    assert plugbox.call_ok(paths.features, "decorated", "from_submodule") == "from_submodule"


@pytest.mark.parametrize("function", ["_renamed_impl", "not_exported", "extra"])
def test_plain_name_not_exported_is_not_found(plugbox, paths, function):
    cp = plugbox.call(paths.features, "decorated", function)
    assert_one_error_line(cp, function)


def test_object_reference_reaches_unexported_attribute(plugbox, paths):
    assert plugbox.call_ok(paths.features, "decorated", "decorated:not_exported") == \
        "reachable only as decorated:not_exported"
    assert plugbox.call_ok(paths.features, "decorated", "decorated.extra:from_submodule") == \
        "from_submodule"


def test_object_reference_outside_the_plugin_is_not_found(plugbox, paths):
    cp = plugbox.call(paths.seed, "plug1", "os:getcwd")
    assert_one_error_line(cp, "os:getcwd")


@pytest.mark.parametrize("function", ["plug1:nosuch", "plug1.nosuch:f", "nosuch"])
def test_missing_object_reference_is_not_found(plugbox, paths, function):
    cp = plugbox.call(paths.seed, "plug1", function)
    assert_one_error_line(cp, function)


def test_manifest_export_list(plugbox, paths):
    assert plugbox.call_ok(paths.features, "tomllist", "square", "7") == 49
    assert plugbox.call_ok(paths.features, "tomllist", "version_info") == {"manifest_version": "3.1.4"}
    assert_one_error_line(plugbox.call(paths.features, "tomllist", "helper"), "helper")
    assert plugbox.call_ok(paths.features, "tomllist", "tomllist:helper") == \
        "reachable only as tomllist:helper"


def test_manifest_export_table(plugbox, paths):
    assert plugbox.call_ok(paths.features, "tomltable", "double", "21") == 42
    assert plugbox.call_ok(paths.features, "tomltable", "shout", '"hi"') == "HI!"


def test_path_layout_entry_points(plugbox, paths):
    assert plugbox.call_ok(paths.features, "mytool", "plugbox.demo:hello", '"tests"') == "hello, tests"
    assert plugbox.call_ok(paths.features, "mytool", "plugbox.demo:add", "2", "3") == 5
    assert plugbox.call_ok(paths.features, "mytool", "console_scripts:mytool") == "console script main"


def test_path_layout_object_reference(plugbox, paths):
    assert plugbox.call_ok(paths.features, "mytool", "mytool.cli:add", "-2", "-3") == -5


def test_path_layout_missing_entry_point(plugbox, paths):
    assert_one_error_line(plugbox.call(paths.features, "mytool", "plugbox.demo:nosuch"),
                          "plugbox.demo:nosuch")


# --- namespace packages ---

NAMESPACE_MEMBERS = {"ns420_members": ["alpha", "beta"], "pkgutilns_members": ["one", "two"]}


def test_namespace_packages_package_layout(plugbox, paths):
    parts = plugbox.call_ok(paths.features, "nspkg", "parts")
    assert parts["values"] == {
        "nspkg.extra": "nspkg.extra from deps",
        "ns420.alpha": "ns420.alpha from deps",
        "ns420.beta": "ns420.beta from vendor",
        "pkgutilns.one": "pkgutilns.one from deps",
        "pkgutilns.two": "pkgutilns.two from vendor",
    }
    assert {k: parts[k] for k in NAMESPACE_MEMBERS} == NAMESPACE_MEMBERS


def test_namespace_packages_path_layout(plugbox, paths):
    parts = plugbox.call_ok(paths.features, "nspath", "plugbox.demo:parts")
    assert parts["values"] == {
        "ns420.alpha": "ns420.alpha from the plugin root",
        "ns420.beta": "ns420.beta from deps",
        "pkgutilns.one": "pkgutilns.one from the plugin root",
        "pkgutilns.two": "pkgutilns.two from deps",
    }
    assert {k: parts[k] for k in NAMESPACE_MEMBERS} == NAMESPACE_MEMBERS


# --- native code and real libraries in deps ---

def test_c_extension_in_deps(plugbox, paths, copy_plugins, ext_suffix):
    plugins = copy_plugins(paths.cext)
    deps = plugins / "cextplug" / "deps"
    deps.mkdir(exist_ok=True)
    so = deps / ("fastsum" + ext_suffix)
    cc = shlex.split(os.environ.get("PB_CC") or "cc")
    cflags = shlex.split(os.environ.get("PB_PYTHON_CFLAGS") or "-I" + "/usr/include/python3.11")
    build = subprocess.run([*cc, "-shared", "-fPIC", *cflags, str(paths.cext_src / "fastsum.c"),
                            "-o", str(so)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    result = plugbox.call_ok(plugins, "cextplug", "total", "[1, 2, 3, 40, -6]")
    assert result["sum"] == 40
    assert result["module_file"].endswith("/deps/fastsum" + ext_suffix), result
    # The extension's own errors come back as the plugin's exception.
    cp = plugbox.call(plugins, "cextplug", "total", '["x"]')
    assert cp.returncode == EXIT_RAISED, explain(cp)
    assert "TypeError" in cp.stderr, explain(cp)


REAL_REQUESTS_DEPS = ["requests", "urllib3", "idna", "certifi", "charset_normalizer", "chardet", "six.py"]


@pytest.mark.skipif(not (DIST_PACKAGES / "requests").is_dir(),
                    reason="Debian's python3-requests is not installed")
def test_real_requests_imports_despite_socket_denial(plugbox, paths, copy_plugins):
    plugins = copy_plugins(paths.realworld)
    deps = plugins / "realreq" / "deps"
    deps.mkdir()
    for name in REAL_REQUESTS_DEPS:
        src = DIST_PACKAGES / name
        if src.is_dir():
            shutil.copytree(src, deps / name)
        elif src.is_file():
            shutil.copy2(src, deps / name)
    host_version = re.search(r'__version__\s*=\s*"([^"]+)"',
                             (DIST_PACKAGES / "requests" / "__version__.py").read_text()).group(1)

    cp = plugbox.call(plugins, "realreq", "version")
    assert cp.returncode == EXIT_OK, explain(cp)
    result = result_of(cp)
    assert result["requests"] == host_version
    assert result["requests_file"].endswith("/deps/requests/__init__.py"), result
    # urllib3's import-time IPv6 probe was denied, and the supervisor said so.
    assert_reported(cp, "realreq", "socket")


# --- invalid configurations ---

def test_list_reports_invalid_plugins_and_lists_the_rest(plugbox, paths):
    cp = plugbox.list(paths.badconfig)
    assert cp.returncode == 2, explain(cp)
    assert "victim" in parse_list(cp)
    for name in ("escape_dots", "escape_toml", "escape_abs", "wrongname", "badtoml"):
        assert any(line.startswith(f"plugbox: plugin '{name}': ") for line in cp.stderr.splitlines()), \
            f"{name} not reported" + explain(cp)
    for name in ("escape_dots", "escape_toml", "escape_abs"):
        line = next(l for l in cp.stderr.splitlines() if l.startswith(f"plugbox: plugin '{name}': "))
        assert "escapes" in line, explain(cp)


@pytest.mark.parametrize("name", ["escape_dots", "escape_toml", "escape_abs"])
def test_deps_escaping_the_plugin_are_refused(plugbox, paths, name):
    cp = plugbox.call(paths.badconfig, name, "steal")
    assert_one_error_line(cp, name, "escapes")


@pytest.mark.parametrize("name", ["wrongname", "badtoml"])
def test_invalid_manifest_is_refused(plugbox, paths, name):
    assert_one_error_line(plugbox.call(paths.badconfig, name, "ping"), name)


def test_victim_still_works(plugbox, paths):
    assert plugbox.call_ok(paths.badconfig, "victim", "secret") == "victim private data"


def _plugin_with_deps_link(plugins, name, target):
    plugin = plugins / name
    plugin.mkdir()
    (plugin / "__init__.py").write_text(
        '__deps_dir__ = "deps"\n\nimport plugbox\n\n\n'
        '@plugbox.export\ndef steal():\n    import victimdep\n    return victimdep.SECRET\n')
    os.symlink(target, plugin / "deps")
    return plugin


@pytest.mark.parametrize("target", ["../victim/deps", "ABSOLUTE"])
def test_deps_symlink_escaping_the_plugin_is_refused(plugbox, paths, copy_plugins, target):
    plugins = copy_plugins(paths.badconfig, only=["victim"])
    if target == "ABSOLUTE":
        target = str(plugins / "victim" / "deps")
    _plugin_with_deps_link(plugins, "escape_link", target)
    assert_one_error_line(plugbox.call(plugins, "escape_link", "steal"), "escape_link", "escapes")
    cp = plugbox.list(plugins)
    assert cp.returncode == 2, explain(cp)
    assert "victim" in parse_list(cp)
    assert any(line.startswith("plugbox: plugin 'escape_link': ") and "escapes" in line
               for line in cp.stderr.splitlines()), explain(cp)


def test_deps_symlink_inside_the_plugin_is_fine(plugbox, paths, copy_plugins):
    plugins = copy_plugins(paths.badconfig, only=["victim"])
    plugin = _plugin_with_deps_link(plugins, "inside_link", "real_deps")
    (plugin / "real_deps").mkdir()
    (plugin / "real_deps" / "victimdep.py").write_text('SECRET = "my own copy"\n')
    assert plugbox.call_ok(plugins, "inside_link", "steal") == "my own copy"


def test_deeply_nested_manifest_is_an_invalid_configuration(plugbox, paths, copy_plugins):
    plugins = copy_plugins(paths.badconfig, only=["victim"])
    plugin = plugins / "deeptoml"
    plugin.mkdir()
    (plugin / "__init__.py").write_text("import plugbox\n\n\n@plugbox.export\ndef ping():\n    return 'pong'\n")
    depth = 100_000
    (plugin / "plugin.toml").write_text("deps = " + "[" * depth + "]" * depth + "\n")
    cp = plugbox.list(plugins)
    assert cp.returncode == 2, explain(cp)
    assert "victim" in parse_list(cp)
    assert any(line.startswith("plugbox: plugin 'deeptoml': ") for line in cp.stderr.splitlines()), explain(cp)
    assert_one_error_line(plugbox.call(plugins, "deeptoml", "ping"), "deeptoml")
