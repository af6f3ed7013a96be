"""make compat-check: CPython's own regression tests inside plugbox.

Runs test modules of Debian's libpython3.11-testsuite (/usr/lib/python3.11/test)
twice with the same runner (plugins/cpytests/runner.py): inside a plugin
called through plugbox under the shipped `default` policy plus a scratch
directory (cpytests.policy below), and outside any sandbox with plain
`/usr/bin/python3.11 -I -S -X utf8` (started as a worker is: only LANG in
the environment, as nobody when this runs as root, and in UTF-8 mode, which
the worker's interpreter is always in: DESIGN.md, "Embedding CPython 3.11";
test_io's test_default_encoding, skipped in UTF-8 mode, is not the sandbox's
loss). It prints, per module, passed / failed / errors /
skipped on both sides, then every test that passed outside but not inside
("lost"), each classified by its cause, from plugbox's violation reports
(the syscall a test was refused or killed for, attributed to the test that
was running, or whose method is on the report's Python stack) and, where no
report names it, from the error the test saw:

    network   a socket call (the worker has no network; `default` refuses socket())
    process   fork, exec, clone without CLONE_THREAD (no new processes)
    write     a write outside the scratch directory (read-only file system)
    attack    a call on plugbox's kill list (the @attack group: mount,
              chroot, ptrace, bpf...), which only an attack needs and which
              no capability-less process could make succeed: the test called
              it on purpose (test_os's test_oserror_filename calls chroot)
    other     anything else: a harmless call killed or refused, a missing
              file in the worker's view, a resource limit, a log handler...

The first four are the denials `default` is for (attack is counted apart,
so that a kill-list entry that breaks real code shows); the target is no
test lost to `other`. A worker killed half way through a module is started again
for the tests not yet run, so one kill loses one test, not a module.

The summary is also written as JSON (--json), and the last line reads
    compat: N modules, inside P passed / outside Q passed; lost: L (legitimate X, other Y)
Exit status: 0, or 1 when a test was lost to `other` and --max-other is
exceeded (default: any), or 2 on a usage error.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNNER = HERE / "plugins" / "cpytests" / "runner.py"
PLUGIN = "cpytests"
PYTHON = "/usr/bin/python3.11"
NOBODY = 65534
TEST_TIMEOUT = 180      # seconds one test may take (regrtest's default is none; a hang costs this)
TESTDIR = Path("/usr/lib/python3.11/test")

# At least 50 modules, among them every one issue 18 names. Debian 12's
# libpython3.11-testsuite does not ship test_sqlite3: it is listed, and
# reports an import error on both sides, until a release that ships it.
FULL = """
test_threading test_asyncio.test_tasks test_asyncio.test_events test_asyncio.test_futures
test_asyncio.test_queues test_asyncio.test_locks test_uuid test_time test_contextlib
test_contextlib_async test_ctypes test_csv test_sqlite3 test_tempfile test_logging test_os
test_io test_zoneinfo test_json test_re test_string test_collections test_itertools
test_functools test_dataclasses test_enum test_typing test_datetime test_decimal
test_fractions test_math test_statistics test_random test_hashlib test_hmac test_base64
test_binascii test_struct test_array test_codecs test_pickle test_copy test_heapq
test_bisect test_textwrap test_difflib test_pathlib test_glob test_fnmatch test_shutil
test_zipfile test_gzip test_zlib test_bz2 test_lzma test_configparser test_argparse
test_pprint test_operator test_inspect test_traceback test_weakref test_queue test_sched
test_select test_selectors test_signal test_mmap test_fileio test_posix test_resource
test_platform test_locale test_calendar test_secrets test_concurrent_futures test_socket
test_subprocess
""".split()

# CI: a handful of quick modules that still touch files, threads, time zones,
# sqlite and the uuid/clock calls libraries make (about two minutes).
CI = """
test_json test_uuid test_contextlib test_csv test_zoneinfo test_tempfile test_time
test_fnmatch test_glob test_queue
""".split()

# Left out on both sides, with the reason (a prefix of test ids, ending in ".").
EXCLUDE = {
    "test.test_socket.ThreadedVSOCKSocketStreamTest.":
        "hangs in accept() outside the sandbox on a VM that has a vsock device and no peer",
}

POLICY = """\
# cpytests: `default` plus a scratch directory, as a plugin that needs
# temporary files gets (docs/plugin-guide.md). CPython's test modules run
# for minutes, so the time limits are the suite's, not default's.
openat: 1
@file-write: 1
@scratch 256M
@limit call-time 30m
@limit cpu 30m
@include default
"""

NETWORK = {"socket", "socketpair", "connect", "bind", "listen", "accept", "accept4", "sendto",
           "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "getsockopt", "setsockopt",
           "getsockname", "getpeername", "shutdown"}
PROCESS = {"fork", "vfork", "clone", "clone3", "execve", "execveat"}
WRITE = {"open", "openat", "creat", "mkdir", "mkdirat", "unlink", "unlinkat", "rename", "renameat",
         "renameat2", "rmdir", "symlink", "symlinkat", "link", "linkat", "truncate", "mknod",
         "mknodat", "chmod", "fchmodat", "chown", "fchownat", "lchown", "utimensat", "utime",
         "utimes", "futimesat", "setxattr", "lsetxattr", "removexattr", "lremovexattr"}

# The kill list's rule as python.policy writes it, named in a kill's report.
ATTACK_RULE = "rule '@attack: kill'"

OUTCOMES = ("passed", "failed", "error", "skipped")

_REPORT = re.compile(r"^plugbox: plugin '([^']+)'(?::| stopped by the sandbox:)\s+(?:denied\s+|refused\s+)?"
                     r"([a-z_][a-z0-9_]*)\((?:0x[0-9a-f]+|\d+|-\d+|\)|,)")
_FRAME = re.compile(r'File "([^"]+)", line \d+ in ([A-Za-z_][A-Za-z0-9_]*)')


def parse(text, started_order=None):
    """plugbox's (or the runner's) stderr -> (outcomes, reports, events).

    outcomes: {test id: (outcome, detail)}; started: tests begun, in order;
    reports: [{"test", "syscall", "kill", "line"}] attributed to a test.
    """
    outcomes, started, reports, tried = {}, [], [], {}
    current = last_ended = None
    last_report = None
    method_of = {}
    done = False
    for raw in text.splitlines():
        line = raw
        if line.startswith(f"[{PLUGIN}] "):
            line = line[len(PLUGIN) + 3:]
        if line.startswith("@@cpy "):
            try:
                event = json.loads(line[6:])
            except ValueError:
                continue
            if "start" in event:
                current = event["start"]
                started.append(current)
                method_of.setdefault(current.rsplit(".", 1)[-1], current)
            elif "end" in event:
                outcomes[event["end"]] = (event["outcome"], event.get("detail", ""))
                tried[event["end"]] = sorted(set(tried.get(event["end"], [])) | set(event.get("tried", [])))
                last_ended, current = event["end"], None
            elif "attempt" in event and (current or last_ended):
                tried.setdefault(current or last_ended, []).append(event["attempt"])
            elif "done" in event:
                done = True
            elif "load" in event and event.get("error"):
                outcomes[event["load"]] = ("error", event["error"])
            last_report = None
            continue
        m = _REPORT.match(raw)
        if m:
            # A report read after its test ended (two pipes) belongs to
            # the test that ended last.
            last_report = {"test": current or last_ended, "syscall": m.group(2),
                           "kill": "stopped by the sandbox" in raw, "line": raw[:300]}
            reports.append(last_report)
            continue
        f = _FRAME.search(raw)
        if f and last_report is not None:
            # A test method on the report's stack names the test better
            # than the order of lines, which two pipes may interleave.
            name = f.group(2)
            if name.startswith("test") and name in method_of and "/test/" in f.group(1):
                last_report["test"] = method_of[name]
    return outcomes, started, reports, tried, done


def run_side(start, module, timeout, log):
    """Run a module to its end: start(skip) -> (returncode, stderr text,
    timed_out); a run cut short (a kill, a crash, a timeout) is started
    again without the tests it already ran and the one it died in.
    Returns {"outcomes", "reports", "restarts"}."""
    outcomes, reports, restarts, tried = {}, [], [], {}
    skip = [p for p in EXCLUDE if p.startswith(module + ".")]
    while True:
        rc, text, timed_out = start(skip, timeout)
        log.append(text)
        got, started, reps, attempts, done = parse(text)
        outcomes.update(got)
        tried.update(attempts)
        reports.extend(reps)
        if done or (rc == 0 and not timed_out):
            break
        unfinished = [t for t in started if t not in got]
        if not unfinished or len(restarts) >= 200:
            kills = [r for r in reps if r["kill"]]
            outcomes.setdefault(module, ("error", f"run ended (exit {rc}{', timeout' if timed_out else ''}) "
                                         "outside any test: " +
                                         (kills[-1]["line"] if kills else text.strip()[-400:])))
            break
        dead = unfinished[-1]
        kills = [r for r in reps if r["kill"]]
        why = (f"worker stopped in this test: {kills[-1]['line']}" if kills else
               f"timed out (a test has {TEST_TIMEOUT} s, a module {timeout} s)" if timed_out else
               f"the run ended with exit {rc} in this test: " + text.strip()[-300:])
        outcomes[dead] = ("error", why)
        if kills and kills[-1]["test"] is None:
            kills[-1]["test"] = dead
        restarts.append(dead)
        skip = [p for p in EXCLUDE if p.startswith(module + ".")] + [t for t in outcomes if t != module]
    return {"outcomes": outcomes, "reports": reports, "restarts": restarts, "tried": tried}


def classify(test, inside, reports, module=None, tried=None):
    """(cause, why) of a test lost inside."""
    outcome, detail = inside.get(test, ("not run", ""))
    if test not in inside:
        # setUpClass or setUpModule failed: unittest reports it under
        # "setUpClass (module.Class)", and the class's tests never start.
        # A run that ended outside any test is filed under the module.
        klass = test.rsplit(".", 1)[0]
        prefixes = {test.rsplit(".", n)[0] for n in range(1, test.count(".") + 1)}
        for holder, (o, d) in inside.items():
            if holder in prefixes or "(" in holder and (
                    f"({klass})" in holder or holder[holder.find("(") + 1:-1] in prefixes):
                outcome, detail = f"not run, {holder}: {o}", d
                test = holder
                break
        else:
            if module in inside:
                outcome, detail = f"not run, {module}: {inside[module][0]}", inside[module][1]
    mine = [r for r in reports if r["test"] == test]
    kills = [(r["syscall"], r["line"]) for r in mine if r["kill"]]
    at = detail.find("plugbox: plugin")
    m = _REPORT.search(detail[at:]) if "stopped by the sandbox" in detail else None
    if m:
        kills.append((m.group(2), detail[at:]))
    if kills:
        syscall, line = kills[-1]
        cause = ("network" if syscall in NETWORK else "process" if syscall in PROCESS else
                 "attack" if ATTACK_RULE in line else "other")
        return cause, f"killed at {syscall}: {outcome} {detail[-300:]}"
    syscalls = sorted({r["syscall"] for r in mine})
    text = detail or ""
    attempted = (tried or {}).get(test, [])
    if "network" in attempted:
        return "network", f"{outcome}; tried the network; refused {','.join(syscalls)}: {text[-300:]}"
    if "process" in attempted:
        return "process", f"{outcome}; tried to start a process: {text[-300:]}"
    if any(s in NETWORK for s in syscalls):
        return "network", f"{outcome}; refused {','.join(syscalls)}: {text[-300:]}"
    if any(s in PROCESS for s in syscalls) or re.search(
            r"fork|spawn|subprocess|Popen|execv|os\.system|multiprocessing|"
            r"requires subprocess|can't start new process", text):
        return "process", f"{outcome}; {','.join(syscalls)} {text[-300:]}"
    if outcome == "skipped" and re.search(r"IPv6|VSOCK|dualstack|socket", text, re.I):
        return "network", f"skipped: {text.strip()}"
    # Skips that say a program is missing: ctypes.util.find_library() runs
    # ldconfig or gcc (at import time, for test_find's lib_gl), and the
    # worker's view holds no programs, since it may not start them.
    if outcome == "skipped" and re.search(r"requires a shell|command to run|relies on #!/bin|bash or ksh|"
                                          r"gcc, needed|find libc|find C library|^lib_\w+ not available",
                                          text):
        return "process", f"skipped: {text.strip()} (needs to run a program)"
    m = re.fullmatch(r"requires ([\w.-]+)|([\w.-]+) required for this test\.?", text.strip())
    if outcome == "skipped" and m and shutil.which(m.group(1) or m.group(2)):
        # an executable the test would run (uuid's `ip`, `ifconfig`): the
        # worker's view has no programs, since it may not start them
        return "process", f"skipped: {text.strip()} (a program, absent where exec is denied)"
    if "Errno 30" in text or "Read-only file system" in text or "write" in attempted:
        return "write", f"{outcome}: {text[-300:]}"
    if re.search(r"socket\.py|socket\(|\bsocket\b.*Errno 13|Errno 13\].*socket", text):
        return "network", f"{outcome}: {text[-300:]}"
    return "other", (f"{outcome}; refused: {','.join(syscalls)}; " if syscalls else f"{outcome}; ") + text[-500:]


def reason_key(why):
    """What tests lost for the same reason share: the syscall that killed or
    was refused, else the last line of the error, without numbers that vary."""
    m = re.search(r"killed at (\w+)", why) or re.search(r"refused: ([\w,]+)", why)
    if m:
        return ("killed at " if why.startswith("killed") else "refused ") + m.group(1)
    last = [ln for ln in why.splitlines() if ln.strip()]
    text = last[-1].strip() if last else why
    text = re.sub(r"b?'[^']*'|b?\"[^\"]*\"", "'...'", text)
    text = re.sub(r"0x[0-9a-f]+|\d+", "N", text)
    return text[:160]


def counts(outcomes):
    c = {k: 0 for k in OUTCOMES}
    for outcome, _ in outcomes.values():
        c[outcome if outcome in c else "error"] += 1
    return c


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--plugbox", default=os.environ.get("PLUGBOX"))
    ap.add_argument("--policies", default=os.environ.get("PLUGBOX_POLICIES"))
    ap.add_argument("--work", help="a directory for the plugin set and logs (default: a new one in /tmp)")
    ap.add_argument("--set", choices=("full", "ci"), default="full")
    ap.add_argument("--modules", nargs="*", help="these test modules instead of a set")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=900, help="seconds per module and side")
    ap.add_argument("--json", help="write the summary here")
    ap.add_argument("--outside-root", action="store_true",
                    help="run the outside side as root when this runs as root (default: as nobody)")
    ap.add_argument("--verbose", action="store_true", help="name every test lost to `other`")
    ap.add_argument("--max-other", type=int, default=None,
                    help="exit 1 when more tests than this are lost to `other`")
    args = ap.parse_args(argv)
    if not args.plugbox or not args.policies:
        ap.error("--plugbox and --policies (or PLUGBOX and PLUGBOX_POLICIES) are required")
    if not TESTDIR.joinpath("test_json").exists():
        print(f"compat-check: skipped: CPython's test suite is not installed ({TESTDIR}; "
              "apt-get install libpython3.11-testsuite)")
        return 1 if os.environ.get("PB_COMPAT_REQUIRE") == "1" else 0
    modules = args.modules or (FULL if args.set == "full" else CI)
    modules = [m if m.startswith("test.") else "test." + m for m in modules]

    work = Path(args.work or tempfile.mkdtemp(prefix="plugbox-compat-"))
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    plugins, policies, logs = work / "plugins", work / "policies", work / "logs"
    shutil.copytree(HERE / "plugins" / PLUGIN, plugins / PLUGIN, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(args.policies, policies)
    (policies / f"{PLUGIN}.policy").write_text(POLICY)
    logs.mkdir()
    for dirpath, _, filenames in os.walk(work):
        os.chmod(dirpath, 0o755)
        for f in filenames:
            os.chmod(os.path.join(dirpath, f), 0o644)

    def inside(module):
        def start(skip, timeout):
            argv = [args.plugbox, "call", "--plugins", str(plugins), "--policies", str(policies),
                    "--timeout", str(timeout), PLUGIN, "run", json.dumps(module), json.dumps(skip)]
            return _run(argv, timeout + 30, cwd=work)
        return start

    # Outside runs as a worker starts (DESIGN.md invariant 0): an empty
    # environment but LANG, and, when this runs as root, an unprivileged
    # uid, since a worker never has root's privileges: a test that passes
    # only as root (setuid, setgroups, clock_settime) is not lost to the
    # sandbox. --outside-root keeps root.
    as_nobody = os.geteuid() == 0 and not args.outside_root

    def outside(module):
        def start(skip, timeout):
            with tempfile.TemporaryDirectory(prefix="cpytests-out-") as cwd:
                if as_nobody:
                    os.chown(cwd, NOBODY, NOBODY)
                return _run([PYTHON, "-I", "-S", "-X", "utf8", str(RUNNER), module, *skip], timeout, cwd=cwd,
                            env={"LANG": "C.UTF-8"}, nobody=as_nobody)
        return start

    results = {}
    lock = threading.Lock()

    def job(module, side):
        log = []
        began = time.monotonic()
        r = run_side((inside if side == "inside" else outside)(module), module, args.timeout, log)
        r["seconds"] = round(time.monotonic() - began, 1)
        (logs / f"{module}.{side}.log").write_text("\n".join(log))
        with lock:
            results.setdefault(module, {})[side] = r
            if len(results[module]) == 2:
                print(f"  ran {module}", file=sys.stderr, flush=True)

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for f in [pool.submit(job, m, side) for m in modules for side in ("inside", "outside")]:
            f.result()

    summary = {"modules": {}, "policy": POLICY, "plugbox": args.plugbox, "excluded": EXCLUDE,
               "outside": f"{PYTHON} -I -S -X utf8, environment LANG=C.UTF-8, uid {os.geteuid() if not as_nobody else NOBODY}"}
    totals = {"inside": dict.fromkeys(OUTCOMES, 0), "outside": dict.fromkeys(OUTCOMES, 0)}
    lost_by = {"network": 0, "process": 0, "write": 0, "attack": 0, "other": 0}
    others = []
    header = f"{'module':36} {'outside P/F/E/S':>20} {'inside P/F/E/S':>20}  lost net/proc/write/attack/other"
    print(header)
    for module in modules:
        out, ins = results[module]["outside"], results[module]["inside"]
        co, ci = counts(out["outcomes"]), counts(ins["outcomes"])
        for k in OUTCOMES:
            totals["outside"][k] += co[k]
            totals["inside"][k] += ci[k]
        lost = []
        for test, (outcome, _) in sorted(out["outcomes"].items()):
            if outcome != "passed" or ins["outcomes"].get(test, ("",))[0] == "passed":
                continue
            cause, why = classify(test, ins["outcomes"], ins["reports"], module, ins["tried"])
            lost.append({"test": test, "cause": cause, "why": why})
            lost_by[cause] += 1
            if cause == "other":
                others.append((test, why))
        by = {c: sum(1 for x in lost if x["cause"] == c) for c in lost_by}
        fmt = lambda c: "/".join(str(c[k]) for k in OUTCOMES)  # noqa: E731
        print(f"{module[5:]:36} {fmt(co):>20} {fmt(ci):>20}  "
              f"{len(lost):4}: {by['network']}/{by['process']}/{by['write']}/{by['attack']}/{by['other']}")
        summary["modules"][module] = {
            "outside": co, "inside": ci, "lost": lost, "lost_by_cause": by,
            "inside_restarts": ins["restarts"], "seconds": {"inside": ins["seconds"], "outside": out["seconds"]},
            "reports": sorted({r["syscall"] for r in ins["reports"]}),
        }
    if others:
        print("\nlost to other causes, grouped by reason (every test: --json, or --verbose):")
        groups = {}
        for test, why in others:
            groups.setdefault(reason_key(why), []).append(test)
        for key, tests in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            shown = tests if args.verbose else tests[:4]
            more = f" (+{len(tests) - len(shown)} more)" if len(shown) < len(tests) else ""
            print(f"  {len(tests):5}  {key}\n         {', '.join(t.removeprefix('test.') for t in shown)}{more}")
    legit = lost_by["network"] + lost_by["process"] + lost_by["write"] + lost_by["attack"]
    total_lost = legit + lost_by["other"]
    summary["totals"] = {"modules": len(modules), "inside": totals["inside"], "outside": totals["outside"],
                         "lost": total_lost, "lost_by_cause": lost_by, "legitimate": legit}
    print(f"\nlost by cause: network {lost_by['network']}, process creation {lost_by['process']}, "
          f"write outside scratch {lost_by['write']}, kill list {lost_by['attack']}, "
          f"other {lost_by['other']} (logs in {logs})")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    print(f"compat: {len(modules)} modules, inside {totals['inside']['passed']} passed / "
          f"outside {totals['outside']['passed']} passed; lost: {total_lost} "
          f"(legitimate {legit}, other {lost_by['other']})")
    if args.max_other is not None and lost_by["other"] > args.max_other:
        return 1
    return 0


def _run(argv, timeout, cwd, env=None, nobody=False):
    """Run argv, following its stderr as it comes: the run is ended when it
    takes longer than timeout, or one test longer than TEST_TIMEOUT (a test
    waiting forever for a server thread whose socket was refused)."""
    drop = {"user": NOBODY, "group": NOBODY, "extra_groups": []} if nobody else {}
    proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True, env=env, **drop)
    lines, running = [], {"since": None}

    def read():
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace")
            lines.append(line)
            if '@@cpy {"start"' in line:
                running["since"] = time.monotonic()
            elif '@@cpy {"end"' in line:
                running["since"] = None
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    began, timed_out = time.monotonic(), False
    while proc.poll() is None:
        time.sleep(0.5)
        now = time.monotonic()
        since = running["since"]
        if now - began > timeout or (since is not None and now - since > TEST_TIMEOUT):
            os.killpg(proc.pid, 9)
            timed_out = True
            break
    proc.wait()
    reader.join(30)
    return proc.returncode, "".join(lines), timed_out


if __name__ == "__main__":
    sys.exit(main())
