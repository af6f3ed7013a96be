"""The test runner that runs inside a plugin's worker (issue 24).

plugbox.pytest copies the plugin under test and drops this file into the
copy as `_plugbox_testrun.py` (inside the package for the package layout,
beside the plugin's modules for the path layout), then calls its
collect() and run() through the supervisor like any other plugin function.
So the plugin's own tests run in a real worker, under the operator's
policy, and import what the plugin itself can import: the plugin, its
vendored dependencies and the standard library. pytest is not among them,
which is why this runner uses the standard library only and never imports
plugbox (the host package) either.

What it runs, as pytest would: module-level `test*` functions (async ones
through asyncio.run), `test*` methods of `Test*` classes without __init__
(setup_method/teardown_method around each, and setup_function/
teardown_function around functions), and unittest.TestCase
subclasses through unittest itself. Outcomes: unittest.SkipTest (and
@unittest.skip, @unittest.skipIf) is a skip, @unittest.expectedFailure an
xfail, and pytest's own outcome exceptions count too when the plugin
vendors pytest. Test modules' `assert` statements are rewritten when they
are imported so that a failure shows the values compared, since pytest's
assertion rewriting is not there to do it.

Everything it returns is plain values (str, float) and bounded: the host
reads them as the plugin's output.
"""

import ast
import asyncio
import difflib
import importlib
import importlib.machinery
import importlib.util
import inspect
import os
import pprint
import sys
import time
import traceback
import unittest

_HERE = os.path.dirname(os.path.abspath(__file__))
_PREFIX = f"{__package__}." if __package__ else ""
_TEXT_LIMIT = 64 * 1024
_REPR_LIMIT = 240


def _bounded(text, limit=_TEXT_LIMIT):
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n... ({len(text) - limit} more characters cut by plugbox)"


def _repr(value):
    try:
        text = repr(value)
    except Exception as e:  # a broken __repr__ must not hide the failure
        text = f"<{type(value).__name__} whose repr() raised {type(e).__name__}>"
    return text if len(text) <= _REPR_LIMIT else text[:_REPR_LIMIT - 3] + "..."


def _diff(left, right):
    """The lines that differ, for == between two strings or containers."""
    if isinstance(left, str) and isinstance(right, str):
        if "\n" not in left and "\n" not in right:
            return []
        a, b = left.splitlines(), right.splitlines()
    elif isinstance(left, (list, tuple, dict, set, frozenset)) and type(left) is type(right):
        a, b = pprint.pformat(left).splitlines(), pprint.pformat(right).splitlines()
    else:
        return []
    lines = [line for line in difflib.ndiff(a, b) if line[:1] in "+-?"]
    return ["Full diff:"] + lines[:200]


def _explain_compare(src_left, left, op, src_right, right, msg=None):
    lines = [f"assert {_repr(left)} {op} {_repr(right)}"]
    for src, value in ((src_left, left), (src_right, right)):
        if src != _repr(value):
            lines.append(f" +  where {_repr(value)} = {src}")
    if op == "==":
        lines += _diff(left, right)
    return _bounded("\n".join(([str(msg)] if msg is not None else []) + lines))


def _explain_value(src, value, msg=None):
    lines = [f"assert {src}"]
    if src != _repr(value):
        lines.append(f" +  where {src} is {_repr(value)}")
    return _bounded("\n".join(([str(msg)] if msg is not None else []) + lines))


_OPS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
        ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in"}


class _AssertRewriter(ast.NodeTransformer):
    """`assert LEFT OP RIGHT, MSG` becomes: evaluate LEFT and RIGHT once
    into temporaries, and if the comparison is false raise AssertionError
    with their values (MSG evaluated only then). Other asserts keep their
    expression and report its source and value. The temporaries' and the
    helpers' names start with '@', which no source code can name."""

    def __init__(self):
        self.count = 0

    def _name(self, ctx):
        return ast.Name(id=f"@pb_{self.count}", ctx=ctx)

    def visit_Assert(self, node):
        self.generic_visit(node)
        msg = node.msg if node.msg is not None else ast.Constant(None)
        test = node.test
        self.count += 1
        if isinstance(test, ast.Compare) and len(test.ops) == 1 and type(test.ops[0]) in _OPS:
            left = ast.Name(id=f"@pb_{self.count}_l", ctx=ast.Load())
            right = ast.Name(id=f"@pb_{self.count}_r", ctx=ast.Load())
            stmts = [ast.Assign(targets=[ast.Name(id=left.id, ctx=ast.Store())], value=test.left),
                     ast.Assign(targets=[ast.Name(id=right.id, ctx=ast.Store())], value=test.comparators[0])]
            check = ast.Compare(left=left, ops=test.ops, comparators=[right])
            explain = ast.Call(func=ast.Name(id="@pb_explain_compare", ctx=ast.Load()),
                               args=[ast.Constant(ast.unparse(test.left)), left,
                                     ast.Constant(_OPS[type(test.ops[0])]),
                                     ast.Constant(ast.unparse(test.comparators[0])), right, msg],
                               keywords=[])
        else:
            value = ast.Name(id=f"@pb_{self.count}_v", ctx=ast.Load())
            stmts = [ast.Assign(targets=[ast.Name(id=value.id, ctx=ast.Store())], value=test)]
            check = value
            explain = ast.Call(func=ast.Name(id="@pb_explain_value", ctx=ast.Load()),
                               args=[ast.Constant(ast.unparse(test)), value, msg], keywords=[])
        fail = ast.Raise(exc=ast.Call(func=ast.Name(id="AssertionError", ctx=ast.Load()),
                                      args=[explain], keywords=[]), cause=None)
        stmts.append(ast.If(test=ast.UnaryOp(op=ast.Not(), operand=check), body=[fail], orelse=[]))
        for stmt in stmts:
            ast.copy_location(stmt, node)
        return stmts


class _TestModuleLoader(importlib.machinery.SourceFileLoader):
    """Loads a test module from its source, asserts rewritten; never from
    a cached .pyc, which would bring back the original asserts."""

    def get_code(self, fullname):
        source = self.get_data(self.path)
        tree = ast.parse(source, self.path)
        tree = ast.fix_missing_locations(_AssertRewriter().visit(tree))
        return compile(tree, self.path, "exec", dont_inherit=True)

    def exec_module(self, module):
        module.__dict__["@pb_explain_compare"] = _explain_compare
        module.__dict__["@pb_explain_value"] = _explain_value
        super().exec_module(module)


def _module_name(relpath):
    """The test file's module name: its dotted path under the plugin (so
    relative imports and `import NAME` from a test work) where every
    component is an identifier, else a name of its own."""
    parts = relpath[:-3].split("/")
    if all(p.isidentifier() for p in parts):
        return _PREFIX + ".".join(parts)
    return "_plugbox_test_" + "".join(c if c.isalnum() else "_" for c in relpath[:-3])


def _load(relpath):
    if not isinstance(relpath, str) or not relpath.endswith(".py") or relpath.startswith("/") \
            or ".." in relpath.split("/"):
        raise ValueError(f"test file {relpath!r} is not a .py path inside the plugin")
    name = _module_name(relpath)
    module = sys.modules.get(name)
    if module is not None:
        return module
    path = os.path.join(_HERE, relpath)
    parent = "" if name.startswith("_plugbox_test_") else name.rpartition(".")[0]
    if parent:
        importlib.import_module(parent)
    loader = _TestModuleLoader(name, path)
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _line(obj):
    try:
        return inspect.getsourcelines(obj)[1]
    except (OSError, TypeError):
        return 0


def _is_test_class(obj):
    return inspect.isclass(obj) and obj.__name__.startswith("Test") \
        and not issubclass(obj, unittest.TestCase) and obj.__init__ is object.__init__


def collect(relpath):
    """The tests of one test file: {"tests": [[test id, line]...]}, test
    ids as pytest writes them after the file ("test_x", "TestY::test_z"),
    or {"error": the traceback} if importing the file failed."""
    try:
        module = _load(relpath)
    except BaseException as e:  # the test file's own import failed
        return {"error": _bounded(_traceback(e))}
    found = []
    for name, obj in list(vars(module).items()):
        if inspect.isfunction(obj) and name.startswith("test") and obj.__module__ == module.__name__:
            found.append([name, _line(obj)])
        elif inspect.isclass(obj) and obj.__module__ == module.__name__:
            if issubclass(obj, unittest.TestCase):
                for method in unittest.TestLoader().getTestCaseNames(obj):
                    found.append([f"{name}::{method}", _line(getattr(obj, method))])
            elif _is_test_class(obj):
                # in definition order, the class's own methods first, as pytest has them
                seen = set()
                for klass in obj.__mro__:
                    for attr in vars(klass):
                        if attr not in seen and attr.startswith("test") and callable(getattr(obj, attr)):
                            found.append([f"{name}::{attr}", _line(getattr(obj, attr))])
                        seen.add(attr)
    return {"tests": found}


def _traceback(exc):
    """The exception's traceback without this runner's frames and the
    import machinery's (they say nothing to the test's author)."""
    te = traceback.TracebackException.from_exception(exc)
    te.stack = traceback.StackSummary.from_list(
        [f for f in te.stack if f.filename != __file__ and not f.filename.startswith("<frozen importlib")])
    return "".join(te.format())


def _outcome_of(exc):
    """pytest's outcome exceptions, when the plugin vendors pytest."""
    if type(exc).__module__ == "_pytest.outcomes":
        kind = {"Skipped": "skipped", "XFailed": "xfailed", "Failed": "failed"}.get(type(exc).__name__)
        if kind:
            return kind, str(getattr(exc, "msg", "") or "")
    return None


def _call(fn):
    if inspect.iscoroutinefunction(fn):
        return asyncio.run(fn())
    return fn()


def _run_unittest(cls, method):
    result = unittest.TestResult()
    cls(method).run(result)
    for group, outcome in ((result.errors, "failed"), (result.failures, "failed")):
        if group:
            text = group[0][1]
            return outcome, text.strip().splitlines()[-1], text
    if result.skipped:
        return "skipped", result.skipped[0][1], ""
    if result.expectedFailures:
        return "xfailed", "expected failure", result.expectedFailures[0][1]
    if result.unexpectedSuccesses:
        return "failed", "unexpected success (the test is marked @unittest.expectedFailure)", ""
    return "passed", "", ""


def _xunit(hook, fn):
    if hook is not None:
        if inspect.signature(hook).parameters:
            hook(fn)
        else:
            hook()


def _run_one(module, test_id):
    parts = test_id.split("::")
    obj = getattr(module, parts[0])
    if len(parts) == 2 and inspect.isclass(obj) and issubclass(obj, unittest.TestCase):
        return _run_unittest(obj, parts[1])
    instance = None
    if len(parts) == 2:
        instance = obj()
        fn = getattr(instance, parts[1])
    elif len(parts) == 1:
        fn = obj
    else:
        raise LookupError(f"no test {test_id!r}")
    wants = [p for p in inspect.signature(fn).parameters.values()
             if p.default is inspect.Parameter.empty
             and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if wants:
        names = ", ".join(p.name for p in wants)
        return ("failed", f"{test_id} asks for fixtures ({names}): pytest and its fixtures are not "
                "inside the sandbox", "")
    if inspect.isgeneratorfunction(fn):
        return "failed", f"{test_id} is a generator: yield tests are not run (pytest removed them)", ""
    expecting_failure = getattr(fn, "__unittest_expecting_failure__", False)
    # pytest's xunit-style set-up and tear-down around each test
    where, suffix = (instance, "method") if instance is not None else (module, "function")
    setup, teardown = getattr(where, f"setup_{suffix}", None), getattr(where, f"teardown_{suffix}", None)
    try:
        _xunit(setup, fn)
        try:
            _call(fn)
        finally:
            _xunit(teardown, fn)
    except unittest.SkipTest as e:
        return "skipped", str(e), ""
    except BaseException as e:  # the test's failure, whatever it raised
        special = _outcome_of(e)
        if special:
            return special[0], special[1], _traceback(e) if special[0] == "failed" else ""
        message = "".join(traceback.format_exception_only(type(e), e)).strip()
        if expecting_failure:
            return "xfailed", message, _traceback(e)
        return "failed", message, _traceback(e)
    if expecting_failure:
        return "failed", "unexpected success (the test is marked @unittest.expectedFailure)", ""
    return "passed", "", ""


def run(relpath, test_id):
    """Run one test: {"outcome": "passed" | "failed" | "skipped" | "xfailed",
    "message", "traceback", "duration"}. An error importing the test file
    fails the test with that error. What the test prints goes to the
    worker's stdout and stderr, which the supervisor collects: a test the
    sandbox kills keeps what it printed before."""
    start = time.perf_counter()
    try:
        module = _load(relpath)
    except BaseException as e:  # the test file's own import failed
        outcome = ("failed", "".join(traceback.format_exception_only(type(e), e)).strip(), _traceback(e))
    else:
        outcome = _run_one(module, test_id)
    sys.stdout.flush()
    sys.stderr.flush()
    return {"outcome": outcome[0], "message": _bounded(outcome[1]), "traceback": _bounded(outcome[2]),
            "duration": time.perf_counter() - start}
