"""plugbox.pytest: a pytest plugin for plugin authors (issue 24).

    pytest -p plugbox.pytest --plugbox-plugin DIR [--plugbox-policy FILE] [PATHS]

runs the plugin's own test files (the test files pytest collects inside
DIR, outside its deps/) inside a real sandboxed worker of that plugin,
under the policy FILE as the operator will run it (FILE's directory
supplies its @include files). Inside, a test imports what the plugin
imports: the plugin, its vendored dependencies and the standard library,
nothing from the host. Each test is a pytest item of its own
(DIR/tests/test_x.py::test_y) with pytest's outcomes; a sandbox violation
fails the test with the syscall, the rule that stopped it and the plugin's
Python stack, and the next test gets a fresh worker.

Ordinary test files (outside DIR) get a `plugbox_call` fixture:
plugbox_call(FUNCTION, *args) calls the plugin's FUNCTION in the same
worker and returns the result; a violation fails the test the same way.

Without --plugbox-policy the plugin runs under the policies directory's
default (PLUGBOX_POLICIES or the installed one). The in-worker runner is
plugbox/_testrun.py: it is copied, with the plugin, into a private
directory, so the plugin's own directory is never written to.
"""

import os
import re
import shutil
import tempfile

import pytest

import plugbox

RUNNER = "_plugbox_testrun"


def pytest_addoption(parser):
    group = parser.getgroup("plugbox", "plugins in plugbox's sandbox")
    group.addoption("--plugbox-plugin", metavar="DIR",
                    help="the plugin under test: its own test files run inside its worker, "
                         "and plugbox_call calls it (its name is the directory's)")
    group.addoption("--plugbox-policy", metavar="FILE",
                    help="the policy the plugin runs under (default: the policies directory's default)")
    group.addoption("--plugbox-timeout", metavar="SECONDS", type=float, default=60.0,
                    help="each call's (each test's) deadline (default 60)")


def _policies_for(policy, name, where):
    """A policies directory where plugin `name` gets `policy`: the files of
    the policy's own directory (its includes), and the policy as NAME.policy."""
    source = os.path.dirname(os.path.abspath(policy))
    for entry in os.listdir(source):
        if entry.endswith(".policy"):
            shutil.copyfile(os.path.join(source, entry), os.path.join(where, entry))
    shutil.copyfile(policy, os.path.join(where, f"{name}.policy"))
    return where


def _readable(root):
    """Workers run as uids of their own: the copy must be theirs to read."""
    for dirpath, _, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, 0o644)


class InWorkerFailure(Exception):
    """A test that failed inside the worker: the text says how."""


_CONTROL = {c: "?" for c in range(32) if c not in (9, 10)}
_CONTROL[127] = "?"
_TEST_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(::[A-Za-z_][A-Za-z0-9_]*)?")


def _plain(value, limit=256 * 1024):
    """Text the worker sent (the plugin runs there: its answers are not to
    be trusted), as a bounded str without terminal control characters."""
    text = value if isinstance(value, str) else repr(value)
    return text[:limit].translate(_CONTROL)


def _answer(value, shape):
    """The worker's answer if it has this shape ({key: type}), else a
    failure saying so."""
    if not isinstance(value, dict) or not all(isinstance(value.get(k), t) for k, t in shape.items()):
        raise InWorkerFailure(f"the worker's answer is not what plugbox's runner sends: {_plain(value, 500)}")
    return value


def _without_runner(text):
    """A stack without the in-worker runner's frames (one line each)."""
    return "\n".join(line for line in text.splitlines() if f"/{RUNNER}.py" not in line)


def _violation_text(name, what, e):
    stack = _without_runner(_plain(e.remote_traceback)) or "(no stack: the worker was killed without a report)"
    return (f"plugin {name}: {what} was stopped by the sandbox at syscall {e.syscall or '?'} "
            f"by rule {e.rule or '?'}\n{_plain(str(e))}\nthe plugin's Python stack:\n{stack}")


class PluginUnderTest:
    """--plugbox-plugin's plugin, for the session: a copy of it holding the
    in-worker runner, its policies directory, and one Supervisor started
    on first use."""

    def __init__(self, config):
        plugin = config.getoption("plugbox_plugin")
        self.dir = os.path.realpath(plugin)
        if not os.path.isdir(self.dir):
            raise pytest.UsageError(f"--plugbox-plugin {plugin}: not a directory")
        self.name = os.path.basename(self.dir)
        self.policy = config.getoption("plugbox_policy")
        if self.policy and not os.path.isfile(self.policy):
            raise pytest.UsageError(f"--plugbox-policy {self.policy}: no such file")
        self.timeout = config.getoption("plugbox_timeout")
        self.package = os.path.isfile(os.path.join(self.dir, "__init__.py"))
        self.runner = f"{self.name}.{RUNNER}" if self.package else RUNNER
        self.work = None
        self.sup = None
        self.output = []    # what the plugin and the supervisor said, since the last take_output()

    def owns(self, path):
        """True for a path inside the plugin directory."""
        return os.path.realpath(path).startswith(self.dir + os.sep)

    def in_deps(self, path):
        """True for a path inside the plugin's deps/: its dependencies' own
        tests are not the plugin's, and the host must not import them."""
        return (os.path.realpath(path) + os.sep).startswith(os.path.join(self.dir, "deps") + os.sep)

    def supervisor(self):
        if self.sup is None:
            self.work = tempfile.mkdtemp(prefix="plugbox-pytest-")
            plugins = os.path.join(self.work, "plugins")
            os.mkdir(plugins)
            copy = os.path.join(plugins, self.name)
            shutil.copytree(self.dir, copy, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
            shutil.copyfile(os.path.join(os.path.dirname(__file__), "_testrun.py"),
                            os.path.join(copy, RUNNER + ".py"))
            policies = None
            if self.policy:
                policies = os.path.join(self.work, "policies")
                os.mkdir(policies)
                _policies_for(self.policy, self.name, policies)
            _readable(self.work)
            self.sup = plugbox.Supervisor(plugins, policies, timeout=self.timeout, output=self._output)
        return self.sup

    def _output(self, plugin, stream, line):
        if len(self.output) < 1000:
            self.output.append(f"[{stream}] {line}")

    def take_output(self):
        lines, self.output = self.output, []
        return _without_runner("\n".join(lines))

    def call(self, function, *args):
        sup = self.supervisor()
        try:
            return sup.call(self.name, function, *args)
        except (plugbox.SandboxViolation, plugbox.WorkerCrashed, plugbox.CallTimeout):
            # The next test gets a fresh worker at once: forget the crash
            # (no backoff, never marked failed by a run of violations).
            sup.reset(self.name)
            raise

    def close(self):
        if self.sup is not None:
            self.sup.close()
            self.sup = None
        if self.work is not None:
            shutil.rmtree(self.work, ignore_errors=True)
            self.work = None


def pytest_configure(config):
    if config.getoption("plugbox_plugin"):
        config._plugbox = PluginUnderTest(config)


def pytest_unconfigure(config):
    put = getattr(config, "_plugbox", None)
    if put is not None:
        put.close()


def pytest_ignore_collect(collection_path, config):
    put = getattr(config, "_plugbox", None)
    if put is not None and put.in_deps(collection_path):
        return True
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path, parent):
    put = getattr(parent.config, "_plugbox", None)
    if put is not None and put.owns(module_path):
        if module_path.name == "__init__.py":
            # pytest's Package would import it on the host to look for
            # setup_module: the plugin's code runs only in its worker.
            return PluginPackageInit.from_parent(parent, path=module_path)
        return PluginTestFile.from_parent(parent, path=module_path)
    return None


class PluginPackageInit(pytest.File):
    """An __init__.py of the plugin's: nothing to collect on the host."""

    def collect(self):
        return []


class PluginTestFile(pytest.File):
    """One of the plugin's test files: collected inside the worker (the
    host never imports it)."""

    def collect(self):
        put = self.config._plugbox
        relpath = os.path.relpath(os.path.realpath(self.path), put.dir).replace(os.sep, "/")
        try:
            found = put.call(f"{put.runner}:collect", relpath)
        except plugbox.SandboxViolation as e:
            raise self.CollectError(_violation_text(put.name, f"importing {relpath}", e)) from None
        except plugbox.Error as e:
            raise self.CollectError(f"importing {relpath} inside plugin {put.name}'s worker failed: "
                                    f"{_plain(str(e))}\n{_plain(e.remote_traceback)}") from None
        finally:
            put.take_output()
        if isinstance(found, dict) and isinstance(found.get("error"), str):
            raise self.CollectError(f"importing {relpath} inside plugin {put.name}'s worker failed:\n"
                                    f"{_plain(found['error'])}")
        tests = _answer(found, {"tests": list})["tests"]
        if not all(isinstance(t, list) and len(t) == 2 and isinstance(t[0], str) and _TEST_ID.fullmatch(t[0])
                   and isinstance(t[1], int) for t in tests):
            raise self.CollectError(f"the worker's list of tests in {relpath} is not what plugbox's runner "
                                    f"sends: {_plain(tests, 500)}")
        for test_id, line in tests:
            yield PluginTest.from_parent(self, name=test_id, relpath=relpath, line=line)


class PluginTest(pytest.Item):
    """One test of the plugin's, run inside the worker."""

    def __init__(self, *, relpath, line, **kw):
        super().__init__(**kw)
        self.relpath = relpath
        self.line = line

    def runtest(self):
        put = self.config._plugbox
        put.take_output()
        try:
            result = put.call(f"{put.runner}:run", self.relpath, self.name)
        except plugbox.SandboxViolation as e:
            raise InWorkerFailure(_violation_text(put.name, f"test {self.name}", e)) from None
        except plugbox.Error as e:
            raise InWorkerFailure(f"test {self.name} in plugin {put.name}'s worker: {type(e).__name__}: "
                                  f"{_plain(str(e))}\n{_plain(e.remote_traceback)}") from None
        finally:
            notes = put.take_output()
            if notes:
                self.add_report_section("call", "plugbox", notes)
        result = _answer(result, {"outcome": str, "message": str, "traceback": str})
        outcome, message, trace = result["outcome"], _plain(result["message"]), _plain(result["traceback"])
        if outcome == "skipped":
            # reported at the test's own line, as a skip inside a test is
            raise pytest.skip.Exception(message, _use_item_location=True)
        if outcome == "xfailed":
            pytest.xfail(message)
        if outcome != "passed":
            text = message
            if trace:
                text = f"{trace.rstrip()}\n\n{text}" if text not in trace else trace.rstrip()
            raise InWorkerFailure(f"{text}\n(inside plugin {put.name}'s worker)")

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, InWorkerFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, max(self.line - 1, 0), self.name


@pytest.fixture(scope="session")
def plugbox_supervisor(request):
    """(Supervisor, plugin name) for --plugbox-plugin, shared by the session."""
    put = getattr(request.config, "_plugbox", None)
    if put is None:
        raise pytest.UsageError("plugbox_call needs --plugbox-plugin DIR")
    return put.supervisor(), put.name


@pytest.fixture
def plugbox_call(request, plugbox_supervisor):
    """plugbox_call(FUNCTION, *args, **kwargs): the plugin's FUNCTION in its
    worker. A sandbox violation fails the test, naming what stopped it."""
    sup, name = plugbox_supervisor
    put = request.config._plugbox

    def call(function, *args, **kwargs):
        try:
            return sup.call(name, function, *args, **kwargs)
        except plugbox.SandboxViolation as e:
            sup.reset(name)
            pytest.fail(_violation_text(name, f"{function}()", e), pytrace=False)
        finally:
            notes = put.take_output()
            if notes:
                request.node.add_report_section("call", "plugbox", notes)

    return call
