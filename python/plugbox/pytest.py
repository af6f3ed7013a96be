"""plugbox.pytest: a pytest plugin for plugin authors (issue 24, in part).

    pytest -p plugbox.pytest --plugbox-plugin DIR [--plugbox-policy FILE] tests/

gives ordinary tests a `plugbox_call` fixture: plugbox_call(FUNCTION, *args)
calls the plugin in DIR in a real sandboxed worker, under the policy FILE
(as the operator will run it: FILE's directory supplies its @include
files), and returns the result. A sandbox violation fails the test with
the syscall, the rule that stopped it and the plugin's Python stack at the
call, so that a plugin author learns in CI, not in production, that the
policy refuses something the plugin needs. Without --plugbox-policy the
plugin runs under the policies directory's default (PLUGBOX_POLICIES or
the installed one).

Not here yet: running the plugin's own test files inside the worker.
"""

import os
import shutil

import pytest

import plugbox


def pytest_addoption(parser):
    group = parser.getgroup("plugbox", "plugins in plugbox's sandbox")
    group.addoption("--plugbox-plugin", metavar="DIR",
                    help="the plugin directory plugbox_call calls (its name is the directory's)")
    group.addoption("--plugbox-policy", metavar="FILE",
                    help="the policy the plugin runs under (default: the policies directory's default)")
    group.addoption("--plugbox-timeout", metavar="SECONDS", type=float, default=60.0,
                    help="each call's deadline (default 60)")


def _policies_for(policy, name, where):
    """A policies directory where plugin `name` gets `policy`: the files of
    the policy's own directory (its includes), and the policy as NAME.policy."""
    source = os.path.dirname(os.path.abspath(policy))
    for entry in os.listdir(source):
        if entry.endswith(".policy"):
            shutil.copyfile(os.path.join(source, entry), where / entry)
    shutil.copyfile(policy, where / f"{name}.policy")
    return where


@pytest.fixture(scope="session")
def plugbox_supervisor(request, tmp_path_factory):
    """(Supervisor, plugin name) for --plugbox-plugin, shared by the session."""
    config = request.config
    plugin = config.getoption("plugbox_plugin")
    if not plugin:
        raise pytest.UsageError("plugbox_call needs --plugbox-plugin DIR")
    plugin = os.path.realpath(plugin)
    if not os.path.isdir(plugin):
        raise pytest.UsageError(f"--plugbox-plugin {plugin}: not a directory")
    name = os.path.basename(plugin)
    policy = config.getoption("plugbox_policy")
    policies = None
    if policy:
        if not os.path.isfile(policy):
            raise pytest.UsageError(f"--plugbox-policy {policy}: no such file")
        policies = _policies_for(policy, name, tmp_path_factory.mktemp("plugbox-policies"))
    with plugbox.Supervisor(os.path.dirname(plugin), policies,
                            timeout=config.getoption("plugbox_timeout")) as sup:
        yield sup, name


@pytest.fixture
def plugbox_call(plugbox_supervisor):
    """plugbox_call(FUNCTION, *args, **kwargs): the plugin's FUNCTION in its
    worker. A sandbox violation fails the test, naming what stopped it."""
    sup, name = plugbox_supervisor

    def call(function, *args, **kwargs):
        try:
            return sup.call(name, function, *args, **kwargs)
        except plugbox.SandboxViolation as e:
            stack = e.remote_traceback or "(no stack: the worker was killed without a report)"
            pytest.fail(f"plugin {name}: {function}() was stopped by the sandbox at syscall "
                        f"{e.syscall or '?'} by rule {e.rule or '?'}\n{e}\n"
                        f"the plugin's Python stack:\n{stack}", pytrace=False)

    return call
