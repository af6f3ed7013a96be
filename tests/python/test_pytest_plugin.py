"""plugbox.pytest, the pytest plugin for plugin authors (issue 24): run as a
plugin author would, `pytest -p plugbox.pytest --plugbox-plugin DIR
--plugbox-policy FILE`, on the plugin's own test files (which run inside
its worker) and on ordinary test files that use `plugbox_call`."""

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

from conftest import _readable_tree

TESTS = '''
def test_ping(plugbox_call):
    assert plugbox_call("ping") == "pong"


def test_attack(plugbox_call):
    plugbox_call("attack")
'''


def run_pytest(scratch, plugin, policy=None):
    (scratch / "test_mine.py").write_text(TESTS)
    argv = [sys.executable, "-m", "pytest", "-p", "plugbox.pytest", "-p", "no:cacheprovider", "--noconftest",
            "-q", "-rf", "--rootdir", str(scratch), "--plugbox-plugin", str(plugin)]
    if policy:
        argv += ["--plugbox-policy", str(policy)]
    return subprocess.run([*argv, str(scratch / "test_mine.py")], cwd=scratch, text=True,
                          capture_output=True, timeout=300)


def test_calls_pass_and_a_violation_fails_naming_syscall_rule_and_stack(scratch, paths):
    cp = run_pytest(scratch, paths.hostile / "sys_ptrace", paths.shipped_policies / "default.policy")
    out = cp.stdout + cp.stderr
    # sys_ptrace has no ping: that test fails as a plain error; attack is killed
    assert cp.returncode == 1, out
    assert "FAILED test_mine.py::test_attack" in out, out
    assert "plugin sys_ptrace: attack() was stopped by the sandbox at syscall ptrace by rule " \
           "'@attack: kill' at python.policy:" in out, out
    assert "the plugin's Python stack:" in out and "sys_ptrace/__init__.py" in out, out

    cp = run_pytest(scratch, paths.hostile / "good", paths.shipped_policies / "default.policy")
    out = cp.stdout + cp.stderr
    assert "1 passed" in out and "test_attack" in out, out   # good has ping, and no attack


def test_the_policy_given_is_the_one_enforced(scratch, paths):
    """The same plugin under a policy of the author's choosing: a policy
    that allows ptrace lets the call through (its harmless arguments
    make it fail inside the plugin instead)."""
    pol = scratch / "pol"
    pol.mkdir()
    for name in ("default", "python"):
        (pol / f"{name}.policy").write_text((paths.shipped_policies / f"{name}.policy").read_text())
    (pol / "mine.policy").write_text("ptrace: 1\n@include default\n")
    cp = run_pytest(scratch, paths.hostile / "sys_ptrace", pol / "mine.policy")
    out = cp.stdout + cp.stderr
    assert "stopped by the sandbox" not in out, out
    # test_attack passed; test_ping failed (sys_ptrace has no ping)
    assert "FAILED test_mine.py::test_ping" in out and "1 failed, 1 passed" in out, out


def test_no_plugin_is_a_usage_error(scratch):
    (scratch / "test_mine.py").write_text(TESTS)
    cp = subprocess.run([sys.executable, "-m", "pytest", "-p", "plugbox.pytest", "-p", "no:cacheprovider",
                         "--noconftest", "-q", str(scratch / "test_mine.py")], cwd=scratch, text=True,
                        capture_output=True, timeout=300)
    assert cp.returncode != 0 and "plugbox_call needs --plugbox-plugin DIR" in cp.stdout + cp.stderr
    assert os.path.exists(scratch / "test_mine.py")


def run_plugin_tests(scratch, plugin, *args):
    """pytest -p plugbox.pytest --plugbox-plugin PLUGIN ARGS... in scratch:
    (exit status, stdout + stderr)."""
    argv = [sys.executable, "-m", "pytest", "-p", "plugbox.pytest", "-p", "no:cacheprovider", "--noconftest",
            "-rA", "--rootdir", str(scratch), "--plugbox-plugin", str(plugin), *args]
    cp = subprocess.run(argv, cwd=scratch, text=True, capture_output=True, timeout=300)
    return cp.returncode, cp.stdout + cp.stderr


# The outcome of each of tests/python/plugins/authored/tests' tests.
AUTHORED = {
    "test_add": "passed",
    "test_add_wrong": "failed",
    "test_vendored_dep_is_importable": "passed",
    "test_host_only_package": "failed",
    "test_nothing_from_the_host_on_sys_path": "passed",
    "test_ptrace_the_parent": "failed",
    "test_connect_out": "failed",
    "test_after_the_kill": "passed",
    "test_skipped": "skipped",
    "test_known_bug": "xfailed",
    "test_async": "passed",
    "test_wants_a_fixture": "failed",
    "test_terminal_escapes": "failed",
    "test_setup_function_ran": "passed",
    "TestClass.test_method": "passed",
    "TestClass.test_in": "failed",
    "TestCase.test_equal": "passed",
    "TestCase.test_not_equal": "failed",
}


def junit_outcomes(report):
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = case.get("classname").rpartition("test_authored")[2].lstrip(".")
        name = f"{name}.{case.get('name')}" if name else case.get("name")
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        skipped = case.find("skipped")
        if kinds == ["skipped"] and skipped.get("type") == "pytest.xfail":
            outcomes[name] = "xfailed"
        else:
            outcomes[name] = {(): "passed", ("failure",): "failed", ("skipped",): "skipped",
                              ("error",): "error"}[tuple(kinds)]
    return outcomes


def test_the_plugins_own_tests_run_inside_its_worker(scratch, paths):
    """The sample plugin's own test suite, as its author runs it: each test
    its own pytest item with pytest's outcome, a failing assert with its
    values, a host-only import failing inside (isolation), the ptrace the
    policy kills as a failure naming syscall, rule and the test's stack,
    and the tests after the kill still running (a fresh worker)."""
    plugin = scratch / "authored"
    shutil.copytree(paths.own / "authored", plugin, ignore=shutil.ignore_patterns("__pycache__"))
    (plugin / "tests" / "test_broken.py").write_text("import not_vendored_anywhere\n")
    # a test file beside __init__.py: pytest would import the package on
    # the host for it (to look for setup_module); were the plugin imported
    # there, this would leave a mark, which in its worker it cannot write
    (plugin / "test_top.py").write_text("import authored\n\n\ndef test_at_the_top():\n"
                                        "    assert authored.add(1, 1) == 2\n")
    marker = scratch / "imported-on-the-host"
    with open(plugin / "__init__.py", "a") as f:
        f.write(f"\ntry:\n    open({str(marker)!r}, 'w').close()\nexcept OSError:\n    pass\n")
    _readable_tree(scratch)
    report = scratch / "report.xml"
    status, out = run_plugin_tests(scratch, plugin, "--continue-on-collection-errors", "--junitxml", str(report),
                                   "--plugbox-policy", str(paths.shipped_policies / "default.policy"), str(plugin))
    assert status == 1, out
    outcomes = junit_outcomes(report)
    broken = outcomes.pop("authored.tests.test_broken")
    assert broken == "error", outcomes
    assert outcomes.pop("authored.test_top.test_at_the_top") == "passed", out
    assert outcomes == AUTHORED, out
    # node ids as pytest writes them, inside the plugin directory
    assert "PASSED authored/tests/test_authored.py::TestClass::test_method" in out, out
    assert "FAILED authored/tests/test_authored.py::test_add_wrong" in out, out
    # the tests ran in the worker: their files are where the worker sees the plugin
    assert 'File "/plugbox/import/authored/tests/test_authored.py", line 28, in test_add_wrong' in out, out
    # a failing assert shows the values compared, and an assert's message
    assert "AssertionError: assert 3 == 4\n +  where 3 = add(1, 2)" in out, out
    assert "AssertionError: no z\nassert 'z' in ['x', 'y']" in out, out
    assert "AssertionError: 2 != 3" in out, out                   # unittest's own
    # isolation: pytest is on the host, not among the plugin's deps
    assert "ModuleNotFoundError: No module named 'pytest'" in out, out
    assert "No module named 'not_vendored_anywhere'" in out and "test_broken.py" in out, out
    # the kill: syscall, rule (file:line), the test's Python stack, and
    # what it printed before (the attempt was made)
    assert re.search(r"plugin authored: test test_ptrace_the_parent was stopped by the sandbox at "
                     r"syscall ptrace by rule '@attack: kill' at python\.policy:\d+", out), out
    assert re.search(r'the plugin\'s Python stack:\n(.*\n)*  File "/plugbox/import/authored/tests/'
                     r'test_authored.py", line 50 in test_ptrace_the_parent', out), out
    assert "[stdout] [about to call ptrace]" in out, out
    assert "_plugbox_testrun" not in out, out                    # the runner's frames are left out
    # a refusal with an errno: the test's own error, and the supervisor's report of it
    assert "PermissionError: [Errno 13] Permission denied" in out, out
    assert re.search(r"\[supervisor\] denied socket\(0x2, .*EACCES by rule 'socket: trap EACCES'", out), out
    assert "test_wants_a_fixture asks for fixtures (tmp_path)" in out, out
    # text from the worker reaches the terminal without its control characters
    assert "AssertionError: ?[2Jcleared the screen" in out and "\x1b" not in out, out
    assert "SKIPPED [1] authored/tests/test_authored.py:62: not on this platform" in out, out
    assert not marker.exists()
    # the plugin's directory is left as it was
    assert not (plugin / "_plugbox_testrun.py").exists()
    assert sorted(p.name for p in plugin.iterdir()) == ["__init__.py", "deps", "test_top.py", "tests"]


def test_only_the_tests_named_run_and_deps_are_not_collected(scratch, paths):
    """-k selects among the in-worker tests; test files in the plugin's deps/
    are its dependencies', not its own."""
    plugin = scratch / "authored"
    shutil.copytree(paths.own / "authored", plugin, ignore=shutil.ignore_patterns("__pycache__"))
    (plugin / "deps" / "tinydep" / "test_dep.py").write_text("def test_dep():\n    pass\n")
    _readable_tree(scratch)
    status, out = run_plugin_tests(scratch, plugin, "-k", "test_add or TestCase", str(plugin))
    assert status == 1, out
    assert "collected 18 items / 14 deselected / 4 selected" in out, out
    assert "test_dep" not in out and "2 failed, 2 passed, 14 deselected" in out, out


SLOW = """
import os
import time


def test_hangs():
    print("[hanging]", flush=True)
    while True:
        time.sleep(0.1)


def test_exits():
    os._exit(3)


def test_after_both():
    pass
"""


def test_a_test_that_hangs_or_kills_its_worker_fails_and_the_next_runs(scratch, paths):
    """A test past --plugbox-timeout, and one that ends its worker, fail
    saying so; each next test gets a fresh worker at once."""
    plugin = scratch / "authored"
    shutil.copytree(paths.own / "authored", plugin, ignore=shutil.ignore_patterns("__pycache__"))
    (plugin / "tests" / "test_slow.py").write_text(SLOW)
    _readable_tree(scratch)
    status, out = run_plugin_tests(scratch, plugin, "--plugbox-timeout", "3",
                                   str(plugin / "tests" / "test_slow.py"))
    assert status == 1, out
    assert "FAILED authored/tests/test_slow.py::test_hangs" in out, out
    assert "FAILED authored/tests/test_slow.py::test_exits" in out, out
    assert "PASSED authored/tests/test_slow.py::test_after_both" in out, out
    assert re.search(r"test test_hangs in plugin authored's worker: CallTimeout: .*", out), out
    assert "[stdout] [hanging]" in out, out
    assert re.search(r"test test_exits in plugin authored's worker: WorkerCrashed: .*", out), out


def test_a_path_layout_plugins_tests_run_too(scratch):
    """A plugin without __init__.py (an import root, as pip --target leaves
    it): its tests import its modules by their top-level names."""
    plugin = scratch / "pathy"
    (plugin / "tests").mkdir(parents=True)
    (plugin / "pathy_mod.py").write_text("def double(x):\n    return 2 * x\n")
    (plugin / "tests" / "test_p.py").write_text(
        "import sys\nfrom pathy_mod import double\n\n\ndef test_double():\n    assert double(2) == 4\n\n\n"
        "def test_double_wrong():\n    assert double(2) == 5\n\n\n"
        "def test_no_host_paths():\n    assert not [p for p in sys.path if 'packages' in p], sys.path\n")
    _readable_tree(scratch)
    status, out = run_plugin_tests(scratch, plugin, str(plugin))
    assert status == 1, out
    assert "PASSED pathy/tests/test_p.py::test_double" in out, out
    assert "PASSED pathy/tests/test_p.py::test_no_host_paths" in out, out
    assert "FAILED pathy/tests/test_p.py::test_double_wrong" in out, out
    assert "AssertionError: assert 4 == 5\n +  where 4 = double(2)" in out, out
    assert not (plugin / "_plugbox_testrun.py").exists()
