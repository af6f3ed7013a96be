"""examples/framework/framework.py, the example framework written in Python
over the `plugbox` host package, does what its docstring and the docs say:
both dependency versions side by side, every typeA plugin answers while the
hostile one is stopped (ptrace, the rule that decided), the host function
round trip for the plugin granted it, a refusal for the other, exit 0.

Run by tests/python/run.sh (make check), which puts the package on sys.path
and sets PLUGBOX_WORKER, PLUGBOX_POLICIES and PB_TOP_SRCDIR.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import plugbox
import pytest

TOP = os.environ.get("PB_TOP_SRCDIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
FRAMEWORK = os.path.join(TOP, "examples", "framework", "framework.py")


def run_framework(*args, timeout=120):
    env = dict(os.environ)
    # The child must import the same plugbox package as this test.
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(plugbox.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in [package_root, env.get("PYTHONPATH", "")] if p)
    return subprocess.run([sys.executable, FRAMEWORK, *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def report():
    """One run of the framework with its own plugins and policies."""
    p = run_framework()
    assert p.returncode == 0, f"exit {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p.stdout


def section(out, title):
    """The lines of one section of the report, from its title to a blank line."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start + 1:end]


def test_framework_runs_and_everything_behaves(report):
    out = report
    assert out.startswith("Framework 0.0.1 is running.")
    assert out.rstrip().endswith("Framework is now exiting: every plugin behaved as expected.")

    # Every plugin listed, with layout, version and entry points.
    listed = section(out, "Plugins (sup.plugins()):")
    names = [line.split()[0] for line in listed]
    assert names == ["plug1", "plug2", "reporter", "typeA_evil", "typeA_plugin1", "typeA_plugin2"]
    assert re.search(r"plug2\s+package\s+2\.0\.0", out)
    assert re.search(r"typeA_plugin1\s+path\s+0\.0\.1\s+typeA:plugin = framework\.typeA\.plugin1:run", out)

    # One dependency, two versions, each from the plugin's own deps.
    assert "plug1          imports requests 2.2.0 from plug1/deps/requests/__init__.py" in out
    assert "plug2          imports requests 2.3.0 from plug2/deps/requests/__init__.py" in out


def test_framework_hook_reports_each_plugin_in_order(report):
    hook = section(report, 'Entry-point group typeA (sup.hook("typeA", context)):')
    heads = [line.strip() for line in hook if line.startswith("  ") and not line.startswith("    ")]
    # Plugins by name, every one answered or was stopped: none hides another.
    assert heads[:3] == ["typeA_evil/plugin:", "typeA_plugin1/plugin:", "typeA_plugin2/plugin:"]
    text = "\n".join(hook)
    # The hostile plugin: its attempt to read /etc/shadow failed inside the
    # sandbox, and ptrace was stopped by the rule that decided.
    assert "[typeA_evil] could not read /etc/shadow: FileNotFoundError" in text
    assert "[typeA_evil] trying ptrace on the supervisor..." in text
    assert re.search(r"stopped by the sandbox: SandboxViolation: syscall ptrace, "
                     r"rule '@attack: kill' at python\.policy:\d+", text)
    # The others answered, with the context every entry point got.
    assert "'plugin': 'framework.typeA.plugin1', 'framework': '0.0.1'" in text
    assert "'requests': '2.2.0'" in text
    assert "[typeA_plugin1] framework.typeA.plugin1 starting" in text
    assert "2 answered, 1 stopped by the sandbox, in plugin order" in text
    assert "after that, plug1 still answers: requests 2.2.0" in text


def test_framework_host_function_round_trip(report):
    host = "\n".join(section(report, "Host function lookup_user()"))
    assert "reporter.report(7) -> 'Ada Lovelace <ada@example.org>: 2 roles'" in host
    assert "lookup_user() ran in the framework 1 time(s): [('reporter', 7)]" in host
    assert "[reporter] INFO reporter: report for user 7: Ada Lovelace" in host
    # plug1's policy (default.policy) grants no host function.
    assert re.search(r"plug1 \(not granted\) -> PermissionError: plugin 'plug1' may not call "
                     r"host function 'lookup_user'", host)


def test_framework_fails_when_expectations_fail(tmp_path):
    """The exit status means something: without reporter's grant, the round
    trip fails and the framework says so and exits 1."""
    policies = tmp_path / "policies"
    policies.mkdir()
    shipped = os.environ.get("PLUGBOX_POLICIES") or os.path.join(TOP, "policies")
    for name in ("python.policy", "default.policy"):
        (policies / name).write_text(Path(shipped, name).read_text())
    p = run_framework("--policies", str(policies))
    assert p.returncode == 1, p.stdout + p.stderr
    assert "something did not behave as expected" in p.stdout
    assert "reporter should call lookup_user(7) once" in p.stdout
