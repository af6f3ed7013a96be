"""`plugbox selftest`: the hostile-plugin battery, run in real workers.

The probes are selftest/ (one plugin per attack, listed in
selftest/probes.txt). The battery runs twice, as root and as an unprivileged
user (uid 65534 through setpriv when the tests run as root; the invoking
user otherwise), and must pass both ways: every probe contained, the
sibling plugin answering after each one, and, per probe, evidence in its
`how` that the attempt was really made (EVIDENCE below): an errno from the
very call, the "[about to call X]" marker followed by the sandbox's report
naming the syscall and the rule, a deadline, a limit.

Everything runs from copies in a fresh world-readable directory (the plugbox
and plugbox-worker binaries, policies/ and selftest/): a checkout under
/root is not readable by uid 65534, nor by the per-plugin uid a worker
drops to. The copies also get selftest/symlink_committed/passwd_link, which
a distribution tarball does not carry.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from pbtest import explain, x86_64_only

pytestmark = x86_64_only

NOBODY = 65534
ERR = r" -> E[A-Z]+"


def killed(syscall):
    """The sandbox's report of a killed call: names the syscall and the rule."""
    return rf"{syscall}\(.*\) (via the \w+ ABI )?is not allowed by rule '[^']+'"


def marked_kill(marker, syscall):
    """The probe's marker printed just before the call, then its kill."""
    return rf"\[about to call {marker}\] -> .*{killed(syscall)}"


OUTPUT_SEEN = r"\d+ lines \(\d+ bytes\) reached the host in [\d.]+ s, "
DROPS_TOLD = r"[1-9]\d* drop notes$"

# probe -> what its `how` must show: the attempt was made, and how it ended.
EVIDENCE = {
    "read_secret": r"open\('[^']*/secret'\)" + ERR,
    "read_sibling": r"listdir\('[^']*/sibling'\)" + ERR,
    "read_supervisor_environ": r"os\.open\('/proc/\d+/environ'\)" + ERR,
    "read_supervisor_cmdline": r"read_bytes\('/proc/\d+/cmdline'\)" + ERR,
    "read_supervisor_maps": r"open\('/proc/\d+/maps'\)" + ERR,
    "read_shadow": r"(open\('/etc', O_DIRECTORY\)|openat\(etc, 'shadow'\))" + ERR,
    "read_passwd": r"open\('/etc/passwd'\)" + ERR + r"|mmap\('/etc/passwd'\) read b.*: not the host's file",
    "write_dir": rf"creat\('[^']*/planted-creat'\){ERR}; mkdir\('[^']*'\){ERR}; mkfifo\('[^']*'\){ERR}",
    "write_own_dir": rf"open\('[^']*/planted\.py', 'x'\){ERR}; open\('[^']*/__init__\.py', 'a'\){ERR}",
    "write_stdlib": r"os\.open\('[^']*/plugbox_selftest_planted\.py', O_CREAT\)" + ERR,
    "write_tmp": r"mkstemp\(dir='/tmp'\)" + ERR,
    "scratch_inodes": r"tempfile\.mkdtemp\(\)" + ERR + r"|creating empty files in \S+ -> E(NOSPC|DQUOT) after \d+",
    "hardlink_secret": r"link\('[^']*/secret', '[^']*/secret-link'\)" + ERR,
    "symlink_committed": r"open\('[^']*/passwd_link' -> '/etc/passwd'\)( -> E[A-Z]+| read b.*: not the host's file)",
    "symlink_create": rf"symlink\('/etc/passwd', '[^']*'\){ERR}; symlink\('[^']*/secret', '[^']*'\){ERR}",
    "dotdot_escape": rf"open\('[^']*/\.\./sibling/__init__\.py'\){ERR}; "
    r"open\('[^']*(/\.\.){24}/etc/passwd'\)( -> E[A-Z]+| read b.*: not the host's file)",
    "open_by_handle": marked_kill(r"name_to_handle_at\('[^']*'\)", "name_to_handle_at")
    + r"|(name_to_handle_at|open_by_handle_at)" + ERR,
    "tcp_connect": r"connect\(\('127\.0\.0\.1', \d+\)\)" + ERR,
    "udp_send": r"(socket\(AF_INET, SOCK_DGRAM\)|sendto\(\('127\.0\.0\.1', \d+\)\))" + ERR,
    "unix_connect": r"(socket\(AF_UNIX\)|connect\('[^']*/unix\.sock'\))" + ERR,
    "abstract_connect": r"connect\(abstract 'plugbox-selftest-[^']+'\)" + ERR,
    "connect_elsewhere": r"allowed 127\.0\.0\.1:\d+ connected; 127\.0\.0\.1:\d+ -> ECONNREFUSED; "
    r"::ffff:127\.0\.0\.1:\d+ -> ECONNREFUSED; 127\.0\.0\.2:\d+ -> ECONNREFUSED; "
    r"sendto\(MSG_FASTOPEN\) -> E[A-Z]+; second connect -> EISCONN; UDP -> E[A-Z]+",
    "connect_rewrite": r"300 connects while a thread flips the port: \d+ allowed, \d+ refused, 0 forbidden, 0 other",
    "netlink_socket": r"socket\(AF_NETLINK, NETLINK_ROUTE\)" + ERR,
    "raw_socket": rf"socket\(AF_INET, SOCK_RAW, IPPROTO_ICMP\){ERR}; socket\(AF_PACKET, SOCK_RAW\){ERR}",
    "list_interfaces": r"if_nameindex\(\) -> (E[A-Z]+|\[('lo')?\]); listdir\('/sys/class/net'\) -> (E[A-Z]+|\[('lo')?\])",
    "exec_program": r"execv\('/bin/true'\)" + ERR + "|" + marked_kill(r"execv\('/bin/true'\)", "execve"),
    "subprocess_run": r"subprocess\.run\(\['/bin/sh', \.\.\.\]\)" + ERR + "|" + killed("(clone3?|v?fork)"),
    "fork": r"os\.fork\(\)" + ERR + "|" + killed("clone"),
    "fork_bomb": r"clone\(SIGCHLD\)" + ERR + "|" + marked_kill(r"clone\(SIGCHLD\) 256 times", "clone"),
    "thread_bomb": r"\d+ threads started, then (RuntimeError|MemoryError)|\[about to start up to \d+ threads\] -> worker ended",
    "list_processes": r"listdir\('/proc'\)( -> E[A-Z]+|: 0 other processes)",   # (zygote mode: and its own)
    "memory_bomb": r"MemoryError after \d+ MiB|\[about to allocate up to \d+ MiB\] -> worker ended",
    "core_dump": r"RLIMIT_CORE is \(0, \d+\); raising it -> ",
    "fd_exhaustion": r"os\.dup -> EMFILE after \d+ new descriptors",
    "inherited_fds": r"open: \[0, 1, 2, 3, 4, 5\b[^\]]*\]; the worker's own pipes: \[[^\]]*\]; others: none",
    "cpu_spin": r"\[spinning for up to 30 s\] -> (ended at the deadline|worker ended)",
    "cpu_spin_ignoring_signals": r"\[ignoring \d+ signals, spinning for up to 30 s\] -> (ended at the deadline|worker ended)",
    "sleep_past_deadline": r"\[sleeping for 30 s\] -> ended at the deadline",
    "ptrace_supervisor": marked_kill(r"ptrace\(PTRACE_SEIZE, \d+\)", "ptrace") + r"|ptrace\(PTRACE_SEIZE, \d+\)" + ERR,
    "ptrace_sibling": marked_kill(r"ptrace\(PTRACE_ATTACH, \d+\)", "ptrace") + r"|ptrace\(PTRACE_ATTACH, \d+\)" + ERR,
    "process_vm_readv": marked_kill(r"process_vm_readv\(\d+, 0x[0-9a-f]+\)", "process_vm_readv")
    + r"|process_vm_readv\(\d+\)" + ERR,
    "proc_self_mem": r"open\('/proc/self/mem', O_RDWR\)" + ERR + r"|writing libc's text" + ERR,
    "pidfd_getfd": marked_kill(r"pidfd_open\(\d+\)", "pidfd_open") + r"|pidfd_open\(\d+\)" + ERR
    + r"|every pidfd_getfd" + ERR,
    "io_uring": marked_kill(r"io_uring_setup\(4\)", "io_uring_setup") + r"|io_uring_setup\(4\)" + ERR,
    "bpf": marked_kill(r"bpf\(BPF_MAP_CREATE\)", "bpf") + r"|bpf\(BPF_MAP_CREATE\)" + ERR,
    "userfaultfd": marked_kill(r"userfaultfd\(O_CLOEXEC\)", "userfaultfd") + r"|userfaultfd\(O_CLOEXEC\)" + ERR,
    "perf_event_open": marked_kill(r"perf_event_open\(PERF_TYPE_SOFTWARE\)", "perf_event_open")
    + r"|perf_event_open\(software clock\)" + ERR,
    "add_key": marked_kill(r"add_key\('user', 'plugbox-selftest'\)", "add_key") + r"|add_key\('user', 'plugbox-selftest'\)" + ERR,
    "keyctl": marked_kill(r"keyctl\(KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING\)", "keyctl")
    + r"|keyctl\(KEYCTL_GET_KEYRING_ID\)" + ERR,
    "kexec_load": marked_kill("kexec_load", "kexec_load") + r"|kexec_load\(1000 segments\) -> EPERM",
    "init_module": marked_kill("init_module", "init_module") + r"|init_module\(empty image\) -> EPERM",
    "reboot": marked_kill("reboot", "reboot") + r"|reboot\(MAGIC1, bad MAGIC2\) -> EPERM",
    "personality": marked_kill("personality", "personality") + r"|personality\(query\)" + ERR,
    "syscall_int80": r"\[about to run int 0x80 with eax=20 \(i386 getpid\)\] -> .*" + killed("getpid")
    + r"|int 0x80 getpid" + ERR + r"|mapping int80\.bin executable" + ERR,
    "syscall_x32": marked_kill(r"syscall\(getpid \| 0x40000000\)", "getpid") + r"|x32 getpid" + ERR,
    "kill_supervisor": r"kill\(\d+, SIGURG\)" + ERR,
    "kill_sibling": r"kill\(\d+, SIGKILL\)" + ERR,
    "kill_all": r"kill\(-1, 0\)" + ERR,
    "unshare": marked_kill(r"unshare\(CLONE_NEWUSER \| CLONE_NEWNS\)", "unshare")
    + r"|unshare\(CLONE_NEWUSER\|CLONE_NEWNS\)" + ERR,
    "setns": marked_kill(r"setns\([^\]]*\)", "setns") + r"|setns\(.*, CLONE_NEWNET\)" + ERR,
    "mount": marked_kill(r"mount\('tmpfs', '[^']*'\)", "mount") + r"|mount\(tmpfs, '[^']*'\)" + ERR,
    "chroot": marked_kill(r"chroot\('[^']*'\)", "chroot") + r"|chroot\('[^']*'\)" + ERR,
    # the filter could not be loosened: the violation after the attempt was still killed
    "seccomp_allow_all": r"\[seccomp\(SET_MODE_FILTER, allow-all\) -> (E[A-Z]+|added); about to call ptrace\] -> .*"
    + killed("ptrace"),
    "prctl_set_seccomp": r"\[prctl\(PR_SET_SECCOMP, allow-all\) -> (E[A-Z]+|installed); about to call ptrace\] -> .*"
    + killed("ptrace"),
    "sigsys_handler": r"\[about to replace the SIGSYS handler\] -> .*(replace or block the SIGSYS reporter|"
    + killed("rt_sigaction") + ")",
    "setuid_root": marked_kill(r"setuid\(0\)", "setuid") + r"|setuid\(0\)" + ERR,
    "setgid_root": marked_kill(r"setresgid\(0, 0, 0\)", "setresgid") + r"|setresgid\(0, 0, 0\)" + ERR,
    "setgroups": marked_kill(r"setgroups\(\[0, 42\]\)", "setgroups") + r"|setgroups\(\[0, 42\]\)" + ERR,
    "sethostname": marked_kill(r"sethostname\('[^']*'\)", "sethostname") + r"|sethostname\('[^']*'\)" + ERR,
    "capset_raise": marked_kill(r"capset\(all capabilities\)", "capset") + r"|capset\(all\)" + ERR,
    # python.policy does not allow capget (CPython never calls it): then the
    # kill is the containment; test_sandbox.py reads the sets from the host.
    "capget_empty": killed("capget") + "|" + r"capget: effective 0x0, permitted 0x0, inheritable 0x0, "
    r"bounding (empty|not readable \(prctl -> E[A-Z]+\)), ambient (empty|not readable \(prctl -> E[A-Z]+\))$",
    "tiocsti": marked_kill(r"ioctl\(0, TIOCSTI\)", "ioctl")
    + rf"|ioctl\(0, TIOCSTI\){ERR}; ioctl\(1, TIOCSTI\){ERR}; ioctl\(2, TIOCSTI\){ERR}",
    "dev_tty": r"open\('/dev/tty'\)" + ERR,
    # the runner's count of what reached the host: bounded, and the drops told
    "flood_log": r"wrote a Log record of \d+ bytes of newlines; " + OUTPUT_SEEN + DROPS_TOLD,
    "flood_stdout": r"wrote 64 MiB of newlines on stdout and 16 MiB on stderr; " + OUTPUT_SEEN + DROPS_TOLD,
    "flood_notes": r"5000 host calls refused; " + OUTPUT_SEEN + DROPS_TOLD,
    "terminal_escapes": r"printed ESC, C1 CSI and RLO on stdout, stderr and in a log record; [1-9]\d* lines "
    + OUTPUT_SEEN[len(r"\d+ lines "):] + r"\d+ drop notes$",
}

LAYERS = {"filesystem", "network", "process", "memory", "cpu", "deadline", "signals", "kernel",
          "seccomp", "identity", "capabilities", "tty", "descriptors", "namespaces", "output"}

LINE = re.compile(r"^(?P<layer>\S+) +(?P<name>\S+) +(?P<status>contained|NOT CONTAINED) +(?P<how>\S.*)$")


def manifest(selftest):
    """probes.txt -> [(name, layer, expect, attempt)]"""
    rows = []
    for line in (Path(selftest) / "probes.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, layer, expect, attempt = line.split(None, 3)
            rows.append((name, layer, expect, attempt))
    return rows


# ---- a world-readable copy of everything plugbox selftest needs -------------

@pytest.fixture(scope="module")
def kit(paths):
    """Copies of plugbox, plugbox-worker, policies/ and selftest/ in a fresh
    directory any uid can read, plus a sticky world-writable tmp/ for the
    runner's fixtures. kit.env(**more) is the environment that points
    plugbox at the copies; kit.probes(name, rows, extra) makes a probes
    directory holding the sibling, the named probes from selftest/ and
    `extra` ({plugin: source}), with a probes.txt of `rows`."""
    src = paths.srcdir.parent
    selftest = Path(os.environ.get("PLUGBOX_SELFTEST") or src / "selftest")
    policies = Path(os.environ.get("PLUGBOX_POLICIES") or src / "policies")
    root = Path(tempfile.mkdtemp(prefix="plugbox-selftest-test-"))
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copy(os.environ["PLUGBOX"], root / "plugbox")
    shutil.copy(os.environ["PLUGBOX_WORKER"], root / "plugbox-worker")
    shutil.copytree(policies, root / "policies", ignore=ignore)
    shutil.copytree(selftest, root / "selftest", symlinks=True, ignore=ignore)
    link = root / "selftest" / "symlink_committed" / "passwd_link"
    if not link.is_symlink():   # a distribution tarball does not carry it
        link.symlink_to("/etc/passwd")
    (root / "tmp").mkdir()
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            if not os.path.islink(os.path.join(dirpath, name)):
                os.chmod(os.path.join(dirpath, name), 0o755)
    os.chmod(root / "tmp", 0o1777)

    def env(**more):
        e = {k: v for k, v in os.environ.items() if not k.startswith(("PLUGBOX", "PYTHON"))}
        e.update(PLUGBOX_WORKER=str(root / "plugbox-worker"), PLUGBOX_POLICIES=str(root / "policies"),
                 PLUGBOX_SELFTEST=str(root / "selftest"), TMPDIR=str(root / "tmp"))
        e.update(more)
        return e

    def probes(name, rows, extra=None):
        target = root / name
        target.mkdir()
        shutil.copytree(root / "selftest" / "sibling", target / "sibling")
        for row in rows:
            if (root / "selftest" / row[0]).is_dir():
                shutil.copytree(root / "selftest" / row[0], target / row[0], symlinks=True)
        for plugin, source in (extra or {}).items():
            (target / plugin).mkdir()
            (target / plugin / "__init__.py").write_text(source)
        (target / "probes.txt").write_text("".join(" ".join(row) + "\n" for row in rows))
        for dirpath, dirnames, filenames in os.walk(target):
            os.chmod(dirpath, 0o755)
            for f in filenames:
                os.chmod(os.path.join(dirpath, f), 0o644)
        return target

    yield SimpleNamespace(root=root, plugbox=str(root / "plugbox"), selftest=root / "selftest",
                          policies=root / "policies", env=env, probes=probes)
    shutil.rmtree(root, ignore_errors=True)


def run_selftest(kit, args=(), user=None, timeout=600, **env):
    """plugbox selftest ARGS, as `user` (a uid, through setpriv) or as the
    test's own user; returns the CompletedProcess."""
    argv = [kit.plugbox, "selftest", *args]
    if user is not None:
        argv = ["setpriv", "--reuid", str(user), "--regid", str(user), "--clear-groups", "--", *argv]
    cp = subprocess.run(argv, env=kit.env(**env), cwd=kit.root, text=True, capture_output=True,
                        timeout=timeout, stdin=subprocess.DEVNULL)
    cp.args = ["plugbox", *cp.args[cp.args.index("selftest"):]]   # explain() drops args[0]
    return cp


# ---- the battery, as root and unprivileged ------------------------------------

@pytest.fixture(scope="module", params=["root", "unprivileged", "fork-server", "zygote", "shared-zygote"])
def battery(request, kit):
    """The whole battery, --json, run once per identity, once with every
    worker cloned from the fork-server, and once for each zygote mode,
    every worker forked from its plugin's zygote (--spawn zygote: the
    zygote exec'd; --spawn shared-zygote: cloned from the fork-server; as
    this user): (CompletedProcess, document)."""
    if request.param == "root":
        if os.geteuid() != 0:
            pytest.skip("the tests do not run as root")
        cp = run_selftest(kit, ["--json"])
    elif request.param in ("fork-server", "zygote", "shared-zygote"):
        cp = run_selftest(kit, ["--json", "--spawn", request.param])
    else:
        cp = run_selftest(kit, ["--json"], user=NOBODY if os.geteuid() == 0 else None)
    try:
        doc = json.loads(cp.stdout)
    except ValueError:
        pytest.fail("selftest --json did not print one JSON document" + explain(cp))
    return cp, doc


def status(cp):
    """What to show when a battery assertion fails (stdout is the whole
    document; the failing probes are listed by the assertion itself)."""
    return f"\nexit status {cp.returncode}\n--- stderr ---\n{cp.stderr}"


def test_evidence_table_matches_the_manifest(kit):
    names = [row[0] for row in manifest(kit.selftest)]
    assert len(names) == len(set(names)), "a probe is listed twice"
    assert set(names) == set(EVIDENCE), \
        f"no evidence pattern for {set(names) - set(EVIDENCE)}; unknown {set(EVIDENCE) - set(names)}"
    for name, layer, expect, attempt in manifest(kit.selftest):
        assert layer in LAYERS, name
        assert (kit.selftest / name / "__init__.py").is_file(), name


def test_battery_document(battery):
    cp, doc = battery
    assert set(doc) == {"layers", "probes", "contained", "not_contained"}, status(cp)
    assert doc["layers"] and all(isinstance(x, str) and x for x in doc["layers"]), status(cp)
    for p in doc["probes"]:
        assert set(p) == {"name", "layer", "attempt", "contained", "how", "sibling_ok"}, p
    assert doc["contained"] + doc["not_contained"] == len(doc["probes"])
    assert doc["contained"] == sum(p["contained"] for p in doc["probes"])


def test_battery_is_at_least_40_distinct_attempts_over_every_layer(battery):
    cp, doc = battery
    names = [p["name"] for p in doc["probes"]]
    assert len(names) >= 40 and len(set(names)) == len(names), status(cp)
    assert {p["layer"] for p in doc["probes"]} == LAYERS


def test_every_attempt_is_contained(battery):
    cp, doc = battery
    loose = [f"{p['layer']} {p['name']}: {p['how']}" for p in doc["probes"] if not p["contained"]]
    assert not loose, "NOT CONTAINED:\n" + "\n".join(loose) + status(cp)
    assert doc["not_contained"] == 0
    assert cp.returncode == 0, status(cp)


def test_each_spawn_modes_battery_attacks_workers_started_that_way(battery, request):
    # The fork-server and zygote runs really ran the probes in workers
    # cloned from the fork-server or forked from their plugin's zygote,
    # not in exec'd ones after a fallback.
    cp, doc = battery
    mode = request.node.callspec.params["battery"]
    forked = any(layer.startswith("start: forked from its plugin's zygote") for layer in doc["layers"])
    assert forked == (mode in ("zygote", "shared-zygote")), doc["layers"]
    # The worker (fork-server) or its zygote (shared-zygote) cloned from
    # the fork-server; under zygote the zygote was exec'd.
    cloned = any("cloned from the fork-server" in layer for layer in doc["layers"])
    assert cloned == (mode in ("fork-server", "shared-zygote")), doc["layers"]
    if mode not in ("root", "unprivileged"):
        assert "with exec from now on" not in cp.stderr, cp.stderr


def test_every_attempt_was_really_made(battery):
    cp, doc = battery
    missing = [f"{p['name']}: {p['how']}" for p in doc["probes"]
               if p["name"] in EVIDENCE and not re.search(EVIDENCE[p["name"]], p["how"])]
    assert not missing, "no evidence of the attempt:\n" + "\n".join(missing)


def test_sibling_answers_after_every_probe(battery):
    cp, doc = battery
    lost = [f"{p['name']}: {p['how']}" for p in doc["probes"] if not p["sibling_ok"]]
    assert not lost, "the sibling stopped answering after:\n" + "\n".join(lost)


# ---- the command's contract, on small probe sets ------------------------------

FAKE_PROBES = {
    # honest about a breach
    "admits": 'import plugbox\n\n@plugbox.export\ndef attack(ctx):\n'
              '    return {"contained": False, "how": "read it all"}\n',
    # an exception is no containment
    "raises": 'import plugbox\n\n@plugbox.export\ndef attack(ctx):\n    raise ValueError("boom")\n',
    # says contained, but the manifest wants a kill: the call must not return
    "returns": 'import plugbox\n\n@plugbox.export\ndef attack(ctx):\n'
               '    return {"contained": True, "how": "returned"}\n',
    # a malformed answer
    "mumbles": 'import plugbox\n\n@plugbox.export\ndef attack(ctx):\n    return 42\n',
    # all is well
    "holds": 'import plugbox\n\n@plugbox.export\ndef attack(ctx):\n'
             '    return {"contained": True, "how": "open(x) -> EACCES"}\n',
}


# A probe whose import takes longer than the deadline, as a zygote's start
# (with the fork-server's, under shared-zygote) may on a loaded machine;
# its attack is what the deadline is for.
SLOW_START_PROBE = {
    "slow_start": 'import time\n\nimport plugbox\n\ntime.sleep(4)\n\n\n@plugbox.export\ndef attack(ctx):\n'
                  '    return {"contained": True, "how": "open(x) -> EACCES"}\n',
}


@pytest.mark.parametrize("spawn", ["zygote", "shared-zygote"])
def test_a_slow_start_is_not_charged_to_the_attacks_deadline(kit, spawn):
    # The 3 s deadline covered the worker's start too, and capped its
    # zygote's import (which runs at the start) at 3 s: a start slower than
    # it read "ended at the deadline", NOT CONTAINED, for an attack never
    # made. (An exec'd worker imports its plugin at its first call.)
    rows = [("slow_start", "filesystem", "result", "read a host file, after a slow start"),
            ("sleep_past_deadline", "deadline", "deadline", "sleep past the deadline")]
    probes = kit.probes(f"slow-start-{spawn}", rows, SLOW_START_PROBE)
    cp = run_selftest(kit, ["--json", "--spawn", spawn], PLUGBOX_SELFTEST=str(probes))
    doc = json.loads(cp.stdout)
    got = {p["name"]: p for p in doc["probes"]}
    assert got["slow_start"]["contained"] and got["slow_start"]["how"] == "open(x) -> EACCES", explain(cp)
    # the deadline still ends an attack that runs past it, at 3 s
    assert got["sleep_past_deadline"]["contained"], explain(cp)
    assert "timed out after 3 s" in got["sleep_past_deadline"]["how"], explain(cp)
    assert cp.returncode == 0 and "with exec" not in cp.stderr, explain(cp)


def test_text_output_lists_layers_then_one_line_per_probe(kit):
    rows = [("read_secret", "filesystem", "result", "read a host file"),
            ("ptrace_supervisor", "kernel", "killed|result", "ptrace the supervisor"),
            ("sleep_past_deadline", "deadline", "deadline", "sleep past the deadline")]
    probes = kit.probes("text-probes", rows)
    cp = run_selftest(kit, ["--timeout", "1"], PLUGBOX_SELFTEST=str(probes))
    assert cp.returncode == 0, explain(cp)
    lines = cp.stdout.splitlines()
    assert lines[0] == "layers:", explain(cp)
    start = lines.index("probes:")
    assert start > 1 and all(line.startswith("  ") for line in lines[1:start]), explain(cp)
    body = [LINE.match(line) for line in lines[start + 1:-1]]
    assert all(body) and len(body) == 3, explain(cp)
    assert [(m["layer"], m["name"], m["status"]) for m in body] == \
        [(layer, name, "contained") for name, layer, _, _ in rows], explain(cp)
    assert body[0]["how"].startswith("read a host file: open("), explain(cp)
    assert "ended at the deadline" in body[2]["how"], explain(cp)
    assert lines[-1] == "3 probes: 3 contained, 0 NOT CONTAINED", explain(cp)


def test_a_memory_probe_has_time_to_reach_the_memory_limit(kit):
    """memory_bomb touches every page up to the limit: under an operator's
    `@limit memory 3G` and a 0.5 s deadline, its deadline grows with the
    limit (0.5 s plus a second per 128 MiB), so the limit stops it, not the
    deadline, even on a loaded machine; a probe of another layer keeps the
    deadline it was given."""
    rows = [("memory_bomb", "memory", "limit", "allocate and touch memory up to 4 GiB"),
            ("sleep_past_deadline", "deadline", "deadline", "sleep past the deadline")]
    probes = kit.probes("memory-time-probes", rows)
    policies = kit.root / "memory-time-policies"
    shutil.copytree(kit.policies, policies)
    (policies / "memory_bomb.policy").write_text("@limit memory 3G\n@include default\n")
    os.chmod(policies / "memory_bomb.policy", 0o644)
    started = time.monotonic()
    cp = run_selftest(kit, ["--policies", str(policies), "--timeout", "0.5"], PLUGBOX_SELFTEST=str(probes))
    got = {m["name"]: m for m in map(LINE.match, cp.stdout.splitlines()) if m}
    assert cp.returncode == 0, explain(cp)
    m = re.fullmatch(r"allocate and touch memory up to 4 GiB: MemoryError after (\d+) MiB", got["memory_bomb"]["how"])
    assert m and 2048 < int(m[1]) <= 3072, explain(cp)
    assert "ended at the deadline" in got["sleep_past_deadline"]["how"], explain(cp)
    assert time.monotonic() - started < 60, explain(cp)


def test_not_contained_is_reported_and_fails(kit):
    rows = [("admits", "filesystem", "result", "admit a breach"),
            ("raises", "process", "result", "raise"),
            ("returns", "kernel", "killed", "return where a kill is due"),
            ("mumbles", "memory", "result", "answer nonsense"),
            ("holds", "tty", "result", "hold")]
    probes = kit.probes("fake-probes", rows, FAKE_PROBES)
    cp = run_selftest(kit, [], PLUGBOX_SELFTEST=str(probes))
    assert cp.returncode == 1, explain(cp)
    got = {m["name"]: m for m in map(LINE.match, cp.stdout.splitlines()) if m}
    assert {name: m["status"] for name, m in got.items()} == {
        "admits": "NOT CONTAINED", "raises": "NOT CONTAINED", "returns": "NOT CONTAINED",
        "mumbles": "NOT CONTAINED", "holds": "contained"}, explain(cp)
    assert got["admits"]["how"] == "admit a breach: read it all", explain(cp)
    assert "raised ValueError: boom" in got["raises"]["how"], explain(cp)
    assert "the call returned, which it must not" in got["returns"]["how"], explain(cp)
    assert "not {contained, how}" in got["mumbles"]["how"], explain(cp)
    assert cp.stdout.splitlines()[-1] == "5 probes: 1 contained, 4 NOT CONTAINED", explain(cp)

    cp = run_selftest(kit, ["--json"], PLUGBOX_SELFTEST=str(probes))
    doc = json.loads(cp.stdout)
    assert cp.returncode == 1 and (doc["contained"], doc["not_contained"]) == (1, 4), explain(cp)
    assert all(p["sibling_ok"] for p in doc["probes"]), explain(cp)


def test_a_real_breach_is_seen_by_the_runner(kit):
    """tcp_connect under a policy that grants the network (the shipped
    network-client): the probe connects, and the runner's listener sees the
    connection arrive whatever the probe says."""
    rows = [("tcp_connect", "network", "result", "connect to the host's loopback")]
    probes = kit.probes("breach-probes", rows)
    policies = kit.root / "breach-policies"
    shutil.copytree(kit.policies, policies)
    (policies / "tcp_connect.policy").write_text("@include network-client\n")
    os.chmod(policies / "tcp_connect.policy", 0o644)
    cp = run_selftest(kit, ["--policies", str(policies)], PLUGBOX_SELFTEST=str(probes))
    assert cp.returncode == 1, explain(cp)
    assert re.search(r"^network +tcp_connect +NOT CONTAINED +.*connected to .*"
                     r"\[runner: the TCP listener accepted a connection\]", cp.stdout, re.M), explain(cp)


def test_a_worker_that_cannot_start_exits_4(kit):
    cp = run_selftest(kit, [], PLUGBOX_WORKER=str(kit.root / "no-such-worker"))
    assert cp.returncode == 4, explain(cp)
    assert "sibling" in cp.stderr and "no-such-worker" in cp.stderr, explain(cp)
    assert "NOT CONTAINED" not in cp.stdout and " contained " not in cp.stdout, explain(cp)


@pytest.mark.parametrize("args, why", [
    (["extra"], "unexpected argument 'extra'"),
    (["--timeout", "0"], "--timeout: '0'"),
    (["--bogus"], "unknown option '--bogus'"),
])
def test_usage_errors_exit_2(kit, args, why):
    cp = run_selftest(kit, args)
    assert cp.returncode == 2 and why in cp.stderr and cp.stdout == "", explain(cp)


def test_a_bad_manifest_names_its_line(kit):
    probes = kit.probes("bad-manifest", [("read_secret", "filesystem", "result", "ok"),
                                         ("write_dir", "walls", "result", "unknown layer")])
    cp = run_selftest(kit, [], PLUGBOX_SELFTEST=str(probes))
    assert cp.returncode == 2, explain(cp)
    assert f"{probes}/probes.txt:2: unknown layer" in cp.stderr, explain(cp)
