"""plugbox.pytest, the pytest plugin for plugin authors (issue 24): run as a
plugin author would, `pytest -p plugbox.pytest --plugbox-plugin DIR
--plugbox-policy FILE`, on ordinary test files that use `plugbox_call`."""

import os
import subprocess
import sys

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
