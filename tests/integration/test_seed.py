"""The seed scenario: two plugins vendor two versions of one library, and
each sees its own. Also the bundled examples (README's first commands)."""

import json

from pbtest import (EXIT_OK, EXIT_SANDBOX, STDLIB, DYNLOAD, assert_killed_for, explain,
                    parse_list, plugin_lines)


def test_list_shows_both_plugins(plugbox, paths):
    cp = plugbox.list(paths.seed)
    assert cp.returncode == EXIT_OK, explain(cp)
    assert parse_list(cp) == {
        "plug1": ("package", "0.1.0", set()),   # version from __version__ in __init__.py
        "plug2": ("package", "1.0.0", set()),   # version from plugin.toml
    }


def test_list_json_describes_each_plugins_own_path(plugbox, paths):
    cp = plugbox.list(paths.seed, as_json=True)
    assert cp.returncode == EXIT_OK, explain(cp)
    listed = {p["name"]: p for p in json.loads(cp.stdout)}
    assert sorted(listed) == ["plug1", "plug2"]
    for name, version in (("plug1", "0.1.0"), ("plug2", "1.0.0")):
        p = listed[name]
        assert {"name", "layout", "version", "exports", "entry_points", "sys_path"} <= set(p)
        assert p["layout"] == "package"
        assert p["version"] == version
        assert p["exports"] == []  # decorator exports are not declared in plugin.toml
        assert p["entry_points"] == []
        # [dir holding only the plugin, its deps, stdlib, lib-dynload]
        assert len(p["sys_path"]) == 4, p["sys_path"]
        assert p["sys_path"][1].endswith("/deps"), p["sys_path"]
        assert p["sys_path"][2:] == [STDLIB, DYNLOAD]


def test_each_plugin_gets_its_own_requests(plugbox, paths):
    assert plugbox.call_ok(paths.seed, "plug1", "requests_version") == "2.2.0"
    assert plugbox.call_ok(paths.seed, "plug2", "requests_version") == "2.3.0"


def test_call_by_object_reference(plugbox, paths):
    assert plugbox.call_ok(paths.seed, "plug2", "plug2:requests_version") == "2.3.0"


# --- the bundled examples: what a new user runs first ---

def test_example_list(plugbox, paths):
    cp = plugbox.list(paths.examples)
    assert cp.returncode == EXIT_OK, explain(cp)
    listed = parse_list(cp)
    assert sorted(listed) == ["evil", "plug1", "plug2"]
    assert listed["plug1"][:2] == ("package", "1.0.0")
    assert listed["plug2"][:2] == ("package", "2.0.0")


def test_example_versions_and_greeting(plugbox, paths):
    assert plugbox.call_ok(paths.examples, "plug1", "requests_version") == "2.2.0"
    assert plugbox.call_ok(paths.examples, "plug2", "requests_version") == "2.3.0"
    greeting = plugbox.call_ok(paths.examples, "plug2", "greet", '"Ada"')
    assert greeting.startswith("Hello, Ada!") and "2.3.0" in greeting


def test_example_evil_is_stopped(plugbox, paths):
    cp = plugbox.call(paths.examples, "evil", "steal", options=["--timeout", "20"])
    assert cp.returncode == EXIT_SANDBOX, explain(cp)
    printed = plugin_lines(cp, "evil")
    # The network attempt was made and refused with EACCES...
    assert any(line.startswith("network: PermissionError") for line in printed), explain(cp)
    # ...then the ptrace attempt was made and the worker killed.
    assert "trying ptrace on the supervisor..." in printed, explain(cp)
    assert_killed_for(cp, "evil", "ptrace")
    # The other example plugins are unaffected.
    assert plugbox.call_ok(paths.examples, "plug1", "requests_version") == "2.2.0"


def test_readme_first_command_is_the_examples_script(paths):
    """The README's first command is `bash examples/run`, short enough to
    read; the script is valid bash, runs every bundled example, and turns
    their outcomes into a verdict (examples/run itself installs packages and
    plugbox, so CI runs it, not make check)."""
    import re
    import subprocess
    top = paths.srcdir.parent
    readme = (top / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", readme, re.S)
    assert blocks and blocks[0].strip() == "bash examples/run", blocks[:1]
    for block in blocks:
        assert all(len(line) <= 120 for line in block.splitlines()), block
    script = top / "examples" / "run"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    text = script.read_text()
    assert "apt-get update" in text and "make install" in text
    for plugin in sorted(p.name for p in (top / "examples" / "plugins").iterdir() if p.is_dir() and not p.name.startswith(".")):
        assert f"examples/plugins {plugin} " in text, plugin
    assert "examples/host/host" in text and "examples/framework/framework.py" in text
    assert "Verdict" in text and "exit 1" in text
