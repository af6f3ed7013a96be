"""python.policy allows nothing that nothing needs, and default is python.

For every line of policies/python.policy that allows something (an
unconditional allow, a conditional allow, the `; 1` after a denial), and
for every `||` alternative of an allowing condition, a variant of the policy
without that allowance is made (default.policy = `@include python`) and the
workloads below run under it. Something real must break: the worker is
stopped, a step of the workload fails or answers differently, the supervisor
reports a denial the full policy does not make, or the policy is refused.
An allow line that nothing needs fails its case: give it a workload that
needs it, or remove it.

The workloads, each run only until one breaks:
  - tests/plugins/policy/workload `everything`: the standard library as
    plugins use it, one call (see its docstring);
  - features/workloads `run_all`, cext/cextplug (a C extension in deps),
    realworld/realreq (Debian's requests in deps): the plugins other tests
    run under default;
  - `plugbox learn` (the worker hands its user-notification listener to the
    supervisor);
  - workload `nap` (a 1.5 s timed wait) while the worker is stopped and continued (kill -STOP /
    -CONT, a cgroup freezer): the kernel resumes the timed wait with
    restart_syscall.

The minimal set is measured on x86_64 with Debian 12's glibc and CPython.
"""

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sysconfig
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pbtest import EXIT_OK, explain, result_of, x86_64_only

pytestmark = x86_64_only

SOURCE_POLICIES = Path(__file__).resolve().parents[2] / "policies"
DIST_PACKAGES = Path("/usr/lib/python3/dist-packages")
REAL_REQUESTS_DEPS = ["requests", "urllib3", "idna", "certifi", "charset_normalizer", "chardet", "six.py"]
CALL_TIMEOUT = 60
PARALLEL = 4

ALLOWING = {"1", "allow", "log"}
ACTION = re.compile(r"^(1|allow|kill|log|trap(\s+\w+)?|return\s+\w+)$")


# --- the cases: python.policy's allowances --------------------------------

def _allowing_cases(text):
    """[(case id, variant text)] for each allowance in a policy's text: the
    line's allowing part taken out, and each `||` alternative of an allowing
    condition dropped on its own."""
    lines = text.splitlines()
    cases = []
    for i, raw in enumerate(lines):
        code = raw.split("#", 1)[0].strip()
        if not code or ":" not in code:
            continue  # @include, @default, @after-start: no allowance
        name, body = (part.strip() for part in code.split(":", 1))
        keep = None          # the line with its allowance taken out (None: drop it)
        conditions = []      # allowing conditions: their alternatives are cases too
        if "=>" in body:
            cond, rest = (p.strip() for p in body.split("=>", 1))
            then, _, other = (p.strip() for p in rest.partition(";"))
            if then in ALLOWING:
                conditions.append(cond)
                keep = f"{name}: {other}" if other else None
            elif other in ALLOWING:
                keep = f"{name}: {cond} => {then}"
            else:
                continue
        elif ";" in body:
            cond, other = (p.strip() for p in body.split(";", 1))
            conditions.append(cond)
            keep = f"{name}: {other}" if other not in ALLOWING else None
        elif ACTION.match(body):
            if body not in ALLOWING:
                continue
        else:
            conditions.append(body)
        where = f"line {i + 1} {name}"
        cases.append((where, _replace(lines, i, keep)))
        for cond in conditions:
            alternatives = [a.strip() for a in cond.split("||")]
            if len(alternatives) < 2:
                continue
            for k, alt in enumerate(alternatives):
                rest = " || ".join(alternatives[:k] + alternatives[k + 1:])
                cases.append((f"{where} without `{alt}`",
                              _replace(lines, i, raw.replace(cond, rest, 1))))
    return cases


def _replace(lines, i, new):
    out = lines[:i] + ([new] if new is not None else []) + lines[i + 1:]
    return "\n".join(out) + "\n"


PYTHON_POLICY = (SOURCE_POLICIES / "python.policy").read_text()
CASES = _allowing_cases(PYTHON_POLICY)


# --- running the workloads under a policy ---------------------------------

def _run(plugbox, args, timeout=CALL_TIMEOUT):
    """plugbox ARGS -> (exit status or 'timeout', stdout, stderr)."""
    proc = subprocess.Popen([plugbox.exe, *map(str, args)], env=plugbox.env, text=True,
                            encoding="utf-8", errors="backslashreplace", stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return "timeout", out, err
    return proc.returncode, out, err


def _children(pid):
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry))
    return kids


def _wait_until_in_futex(pid, timeout=1.0):
    """Until the worker's main thread waits in futex (202 on x86_64), so the
    stop interrupts the wait itself."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/syscall").read_text().split()[0] == "202":
                return
        except (OSError, IndexError):
            time.sleep(0.2)
            return
        time.sleep(0.01)


def _nap_stopped_and_continued(plugbox, policies, plugins):
    """workload nap(1): while it waits, stop and continue the worker."""
    proc = subprocess.Popen([plugbox.exe, "call", "--policies", policies, "--plugins", plugins,
                             "workload", "nap", "1.5"], env=plugbox.env, text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        first = proc.stderr.readline()
        if "napping" in first:
            for pid in _children(proc.pid):
                _wait_until_in_futex(pid)
                os.kill(pid, signal.SIGSTOP)
                time.sleep(0.05)
                os.kill(pid, signal.SIGCONT)
        out, err = proc.communicate(timeout=CALL_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return "timeout", out, first + err
    return proc.returncode, out, first + err


# The supervisor's own lines (not the stack lines under a report), with
# numbers (addresses, pids, policy line numbers) blanked.
_STACK_LINE = re.compile(r"^plugbox: plugin '[^']*':  ")


def _verdicts(stderr):
    return {re.sub(r"0x[0-9a-f]+|\d+", "N", line) for line in stderr.splitlines()
            if line.startswith("plugbox: ") and not _STACK_LINE.match(line)}


def _why(stderr):
    """The supervisor's verdict on a run that ended badly, with the Python
    frames it names (innermost first)."""
    lines = [line for line in stderr.splitlines()
             if line.startswith("plugbox: ") and not _STACK_LINE.match(line)]
    why = next((line for line in lines if "stopped by the sandbox" in line or " died" in line
                or "policy error" in line), lines[-1] if lines else "(nothing on stderr)")
    frames = re.findall(r'File "(?:[^"]*/)?([^"/]+)", line (\d+) in (\w+)', stderr.split(why, 1)[-1])
    if frames:
        why += " | at " + ", ".join(f"{func} ({f}:{n})" for f, n, func in frames[:3])
    return why


def _result(out):
    try:
        return json.loads(out)
    except ValueError:
        return out


class Workloads:
    """The workloads, run under one policy directory."""

    def __init__(self, plugbox, paths, scratch):
        self.plugbox = plugbox
        self.policy_plugins = paths.plugins / "policy"
        self.checks = [
            ("workload everything", ["call", "--plugins", self.policy_plugins, "workload", "everything"]),
            ("features/workloads run_all", ["call", "--plugins", paths.features, "workloads", "run_all"]),
            ("cextplug total", ["call", "--plugins", scratch / "cext", "cextplug", "total", "[1, 2, 3, 40, -6]"]),
        ]
        if (scratch / "realworld").is_dir():
            self.checks.append(("realreq version", ["call", "--plugins", scratch / "realworld", "realreq", "version"]))
        self.checks.append(("plugbox learn echo", ["learn", "--plugins", paths.features, "echo", "echo", "1"]))
        self.checks.append(("workload nap, stopped and continued", None))

    def run_one(self, check, policies):
        name, args = check
        if args is None:
            return _nap_stopped_and_continued(self.plugbox, policies, self.policy_plugins)
        return _run(self.plugbox, [args[0], "--policies", policies, *args[1:]])

    def baseline(self, policies):
        return [self.run_one(check, policies) for check in self.checks]

    def first_break(self, policies, baseline):
        """What breaks under policies compared with the baseline, or None."""
        for check, (base_rc, base_out, base_err) in zip(self.checks, baseline):
            rc, out, err = self.run_one(check, policies)
            name = check[0]
            if rc != base_rc:
                return f"{name}: exit {rc} (was {base_rc}): {_why(err)}"
            got, want = _result(out), _result(base_out)
            if isinstance(got, dict) and isinstance(want, dict) and name == "workload everything":
                for step in want:
                    if got.get(step) != want[step]:
                        return f"{name}: step {step!r} gave {json.dumps(got.get(step))[:300]}"
            elif got != want and name.startswith("plugbox learn"):
                extra = sorted(set(out.splitlines()) - set(base_out.splitlines()))
                return f"{name}: the learned policy now asks for {extra}"
            elif got != want:
                return f"{name}: result {str(got)[:300]!r}, was {str(want)[:300]!r}"
            new = sorted(_verdicts(err) - _verdicts(base_err))
            if new:
                return f"{name}: new supervisor line: {new[0]}"
        return None


def _variant_dir(root, name, python_text):
    d = Path(tempfile.mkdtemp(prefix=re.sub(r"[^A-Za-z0-9_.-]+", "-", name)[:60] + "-", dir=root))
    (d / "python.policy").write_text(python_text)
    (d / "default.policy").write_text("@include python\n")
    return d


def _build_cext(src_set, src_c, target):
    shutil.copytree(src_set, target, ignore=shutil.ignore_patterns("__pycache__"))
    deps = target / "cextplug" / "deps"
    deps.mkdir(exist_ok=True)
    cc = shlex.split(os.environ.get("PB_CC") or "cc")
    cflags = shlex.split(os.environ.get("PB_PYTHON_CFLAGS") or "-I/usr/include/python3.11")
    so = deps / ("fastsum" + sysconfig.get_config_var("EXT_SUFFIX"))
    build = subprocess.run([*cc, "-shared", "-fPIC", *cflags, str(src_c), "-o", str(so)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr


def _copy_realworld(src_set, target):
    shutil.copytree(src_set, target, ignore=shutil.ignore_patterns("__pycache__"))
    deps = target / "realreq" / "deps"
    deps.mkdir()
    for name in REAL_REQUESTS_DEPS:
        src = DIST_PACKAGES / name
        if src.is_dir():
            shutil.copytree(src, deps / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.is_file():
            shutil.copy2(src, deps / name)


@pytest.fixture(scope="module")
def variant_runs(request, plugbox, paths):
    """{case id: Future of what broke (or None)}: the selected cases are all
    started at once, PARALLEL at a time; each test waits for its own."""
    selected = [item.callspec.params["where"] for item in request.session.items
                if item.module is request.module and hasattr(item, "callspec")
                and "where" in item.callspec.params]
    paths.scratch_root.mkdir(parents=True, exist_ok=True)
    os.chmod(paths.scratch_root, 0o755)
    scratch = Path(tempfile.mkdtemp(prefix="policy-minimal-", dir=paths.scratch_root))
    _build_cext(paths.cext, paths.cext_src / "fastsum.c", scratch / "cext")
    if (DIST_PACKAGES / "requests").is_dir():
        _copy_realworld(paths.realworld, scratch / "realworld")
    for dirpath, dirnames, filenames in os.walk(scratch):
        os.chmod(dirpath, 0o755)
        for f in filenames:
            os.chmod(os.path.join(dirpath, f), 0o644)
    workloads = Workloads(plugbox, paths, scratch)
    full = _variant_dir(scratch, "full", PYTHON_POLICY)
    baseline = workloads.baseline(full)
    for check, (rc, out, err) in zip(workloads.checks, baseline):
        assert rc == EXIT_OK, f"{check[0]} fails under the full python.policy:\n{out}{err}"

    def run_case(case):
        where, text = case
        d = _variant_dir(scratch, where, text)
        try:
            return workloads.first_break(d, baseline)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    pool = ThreadPoolExecutor(PARALLEL)
    try:
        yield {case[0]: pool.submit(run_case, case) for case in CASES if case[0] in selected}
    finally:
        pool.shutdown(cancel_futures=True)
        shutil.rmtree(scratch, ignore_errors=True)


def test_python_policy_has_allowances_to_check():
    # The parser above found the allow lines (a rewrite of the file that it
    # no longer understands must not pass by checking nothing).
    assert len(CASES) > 50, [c[0] for c in CASES]
    assert any(where.startswith("line ") and where.endswith(" read") for where, _ in CASES)


@pytest.mark.parametrize("where", [case[0] for case in CASES])
def test_every_allowance_is_needed(variant_runs, where):
    broke = variant_runs[where].result()
    assert broke is not None, (
        f"python.policy {where}: nothing breaks without this allowance. Remove it, or add "
        f"what needs it to tests/plugins/policy/workload.")


# --- default is python, and the workload passes under it ---------------------

def test_default_policy_is_python(paths):
    text = (SOURCE_POLICIES / "default.policy").read_text()
    code = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    # python's syscalls and nothing more; the other lines are the other layers
    assert [line for line in code if line and not line.startswith(
        ("@layer ", "@network ", "@scratch ", "@scratch-exec ", "@limit "))] == ["@include python"], text
    # Test plugins get default: none has a NAME.policy among the shipped ones.
    shipped = {p.stem for p in SOURCE_POLICIES.glob("*.policy")} - {"default"}
    plugins = {p.name for group in paths.plugins.iterdir() if group.is_dir()
               for p in group.iterdir() if p.is_dir()}
    assert not plugins & shipped, plugins & shipped


def test_workload_runs_fully_under_default(plugbox, paths):
    cp = plugbox.run(["call", "--policies", SOURCE_POLICIES, "--plugins", paths.plugins / "policy",
                      "workload", "everything"])
    assert cp.returncode == EXIT_OK, explain(cp)
    steps = result_of(cp)
    failed = {name: r for name, r in steps.items() if not r["ok"]}
    assert not failed, json.dumps(failed, indent=1) + explain(cp)
    assert len(steps) >= 30, steps.keys()
    value = {name: r["value"] for name, r in steps.items()}
    # what the sandbox refuses, the plugin sees as an ordinary error
    assert value["subprocess"] == {"error": "PermissionError", "errno": "EPERM"}
    assert value["fork"] == {"error": "PermissionError", "errno": "EPERM"}
    assert value["tempfile"]["mkstemp"]["errno"] == "EROFS"
    assert value["network_refused"]["socket"]["errno"] == "EACCES"
    assert value["ctypes"]["callback"] == [1, 2, 3, 4, 5]   # a ctypes callback through qsort
    assert value["logging"]["file"] == "EROFS"
    # ... and the supervisor says which rule refused it; nothing is killed
    assert "stopped by the sandbox" not in cp.stderr and "died" not in cp.stderr, explain(cp)
    assert re.search(r"denied socket\(.*by rule 'socket: trap EACCES'", cp.stderr), explain(cp)
