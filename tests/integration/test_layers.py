"""The layers beside seccomp, as a policy sets them: @layer, @network,
@scratch and @limit, seen from inside a worker (tests/plugins/layers/probe)
and in what plugbox says.

A kernel that lacks a layer is simulated with tests/tools/deny_syscall, a
seccomp filter plugbox and its workers inherit: landlock_create_ruleset
failing with ENOSYS is a kernel without Landlock; --clone-ns refuses new
mount, user and pid namespaces, as some containers do. A required layer
must then stop the worker with the layer named (fail closed); an optional
one is dropped and listed as unavailable.

Each test writes the probe's policy (probe.policy) into a copy of the
shipped policies, world-readable: as root the worker runs as another uid.
"""

import errno
import json
import os
import shlex
import shutil
import socket
import subprocess
import uuid
from pathlib import Path

import pytest

from pbtest import (EXIT_DIED, EXIT_OK, Plugbox, explain, result_of, scaled, stderr_lines,
                    supervisor_lines)

# Lets a policy write at the seccomp level (python.policy returns EROFS for
# every open for writing), so that what stops a write is the file system's
# layers: the read-only mount tree, the scratch tmpfs, Landlock.
SYSCALLS_MAY_WRITE = "openat: 1\n@file-write: 1\n"


# ---- fixtures --------------------------------------------------------------

@pytest.fixture(scope="module")
def shipped_policies(paths):
    env = os.environ.get("PLUGBOX_POLICIES")
    return Path(env) if env else paths.srcdir.parent / "policies"


@pytest.fixture
def plugins(paths):
    return paths.plugins / "layers"


@pytest.fixture
def policies(scratch, shipped_policies):
    """policies(probe_policy_text or None) -> a directory holding copies of
    the shipped policies and, unless None, probe.policy with that text."""
    count = iter(range(100))

    def make(text, **files):
        target = scratch / f"policies-{next(count)}"
        target.mkdir()
        for f in sorted(shipped_policies.glob("*.policy")):
            shutil.copy(f, target / f.name)
        if text is not None:
            files["probe"] = text
        for name, content in files.items():
            (target / f"{name}.policy").write_text(content)
        for f in target.iterdir():
            os.chmod(f, 0o644)
        os.chmod(target, 0o755)
        return target
    return make


@pytest.fixture(scope="session")
def deny_tool(paths):
    """The built tests/tools/deny_syscall; compiled here with $PB_CC when the
    tests run outside `make check` and it was not built."""
    built = paths.builddir / "tools" / "deny_syscall"
    if built.is_file() and os.access(built, os.X_OK):
        return built
    source = paths.srcdir / "tools" / "deny_syscall.c"
    out = paths.scratch_root / "deny_syscall"
    paths.scratch_root.mkdir(parents=True, exist_ok=True)
    cc = shlex.split(os.environ.get("PB_CC") or "cc")
    cp = subprocess.run([*cc, "-D_GNU_SOURCE", "-o", str(out), str(source), "-lseccomp"],
                        capture_output=True, text=True)
    assert cp.returncode == 0, f"{built} is not built (make check builds it) and compiling it " \
        f"failed:\n{cp.stderr}"
    return out


@pytest.fixture
def run(plugbox, deny_tool):
    """run(args, policies_dir, deny=None) -> plugbox ARGS with that policies
    directory, under `deny_syscall DENY... --` when deny is a list."""
    def go(args, pol, deny=None, timeout=60):
        env = {"PLUGBOX_POLICIES": str(pol)}
        if deny is None:
            return plugbox.run(args, env=env, timeout=timeout)
        wrapped = Plugbox(str(deny_tool), plugbox.env)
        return wrapped.run([*deny, "--", plugbox.exe, *map(str, args)], env=env, timeout=timeout)
    return go


def call(plugins, function, *json_args, options=()):
    return ["call", "--plugins", plugins, *options, "probe", function,
            *[json.dumps(a) for a in json_args]]


def layers_of(cp):
    """The probe's layers in `plugbox list --json` output."""
    assert cp.returncode == EXIT_OK, explain(cp)
    (probe,) = [p for p in json.loads(cp.stdout) if p["name"] == "probe"]
    return probe["layers"]


def layer(layers, name):
    """The one layer line starting 'NAME: '."""
    found = [line for line in layers if line.startswith(name + ": ")]
    assert len(found) == 1, (name, layers)
    return found[0]


def one_error_line(cp, *must_contain):
    """A worker that could not start: exit 4, nothing on stdout, one stderr
    line starting 'plugbox: ' that contains each of must_contain."""
    assert cp.returncode == EXIT_DIED, explain(cp)
    assert cp.stdout == "", explain(cp)
    lines = stderr_lines(cp)
    assert len(lines) == 1 and lines[0].startswith("plugbox: "), explain(cp)
    for text in must_contain:
        assert text in lines[0], f"{text!r} not in the error line" + explain(cp)
    return lines[0]


ENOSYS_TEXT = os.strerror(errno.ENOSYS)
EPERM_TEXT = os.strerror(errno.EPERM)
NO_LANDLOCK = ["landlock_create_ruleset=ENOSYS"]
NO_NAMESPACES = ["--clone-ns"]


# ---- (a) Landlock: required fails closed, optional goes on ------------------

def test_landlock_required_but_missing_stops_the_worker(run, plugins, policies):
    pol = policies("@layer landlock required\n@include default\n")
    cp = run(call(plugins, "ping"), pol, deny=NO_LANDLOCK)
    one_error_line(cp, "'probe'", "landlock", "requires", ENOSYS_TEXT)


def test_landlock_optional_and_missing_is_listed_as_unavailable(run, plugins, policies):
    pol = policies("@layer landlock optional\n@include default\n")
    cp = run(call(plugins, "ping"), pol, deny=NO_LANDLOCK)
    assert (cp.returncode, result_of(cp)) == (EXIT_OK, "pong"), explain(cp)
    layers = layers_of(run(["list", "--json", "--workers", "--plugins", plugins], pol, deny=NO_LANDLOCK))
    assert layer(layers, "landlock").startswith("landlock: unavailable here (" + ENOSYS_TEXT), layers
    # The other layers are all still there.
    assert "pid mount" in layer(layers, "namespaces"), layers
    assert layer(layers, "filesystem").startswith("filesystem: mount tree"), layers


def test_landlock_active_without_the_wrapper(run, plugins, policies):
    # The contrast: on this kernel, without deny_syscall, Landlock is on.
    layers = layers_of(run(["list", "--json", "--workers", "--plugins", plugins], policies(None)))
    assert layer(layers, "landlock").startswith("landlock: ABI "), layers


# ---- (b) namespaces: required fails closed, optional and off go on ----------

@pytest.mark.parametrize("text", ["@layer namespaces required\n@include default\n", None],
                         ids=["explicit", "shipped-default"])
def test_namespaces_required_but_refused_stops_the_worker(run, plugins, policies, text):
    cp = run(call(plugins, "ping"), policies(text), deny=NO_NAMESPACES)
    one_error_line(cp, "'probe'", "namespaces", EPERM_TEXT, "@layer namespaces required")


@pytest.fixture
def host_secret(scratch):
    """A file any uid could read by its permissions: only a layer stops it."""
    path = scratch / "host-secret.txt"
    path.write_text("host secret\n")
    os.chmod(path, 0o644)
    return path


def check_without_namespaces(run, plugins, pol, deny, why, secret):
    cp = run(call(plugins, "own_file"), pol, deny=deny)
    assert cp.returncode == EXIT_OK and result_of(cp).startswith('"""probe:'), explain(cp)
    layers = layers_of(run(["list", "--json", "--workers", "--plugins", plugins], pol, deny=deny))
    assert layer(layers, "namespaces") == f"namespaces: none ({why})", layers
    assert not any(line.startswith("filesystem: mount tree") for line in layers), layers
    # The identity and the limits do not depend on namespaces.
    assert layer(layers, "rlimits").startswith("rlimits: memory 1G address-space 6G"), layers
    assert layer(layers, "capabilities").startswith("capabilities: none"), layers
    got = run(call(plugins, "read_file", str(secret)), pol, deny=deny)
    assert got.returncode == EXIT_OK, explain(got)
    if layer(layers, "landlock").startswith("landlock: ABI "):
        # No mount tree: Landlock's read rules are the file-system wall.
        assert result_of(got) == {"type": "PermissionError", "errno": errno.EACCES}, explain(got)
    for path in ("/etc/hostname", "/etc/passwd"):
        if os.path.exists(path) and layer(layers, "landlock").startswith("landlock: ABI "):
            got = run(call(plugins, "read_file", path), pol, deny=deny)
            assert result_of(got)["errno"] == errno.EACCES, explain(got)
    if layer(layers, "landlock").startswith("landlock: ABI "):
        # Without a mount tree / is the host's: it may not be listed.
        got = run(call(plugins, "list_dir", "/"), pol, deny=deny)
        assert result_of(got) == {"type": "PermissionError", "errno": errno.EACCES}, explain(got)


def test_namespaces_optional_and_refused_goes_on_without(run, plugins, policies, host_secret):
    pol = policies("@layer namespaces optional\n@include default\n")
    check_without_namespaces(run, plugins, pol, NO_NAMESPACES, "unavailable here", host_secret)


def test_namespaces_off(run, plugins, policies, host_secret):
    pol = policies("@layer namespaces off\n@include default\n")
    check_without_namespaces(run, plugins, pol, None, "off in the policy", host_secret)


def test_namespaces_optional_when_available_are_used(run, plugins, policies, host_secret):
    pol = policies("@layer namespaces optional\n@include default\n")
    layers = layers_of(run(["list", "--json", "--workers", "--plugins", plugins], pol))
    assert "pid mount" in layer(layers, "namespaces"), layers
    # In the mount tree the host file is not there at all.
    got = run(call(plugins, "read_file", str(host_secret)), pol)
    assert result_of(got) == {"type": "FileNotFoundError", "errno": errno.ENOENT}, explain(got)


def test_the_view_may_be_listed_and_holds_only_what_was_given(run, plugins, policies):
    """test_os lists "/": the mount tree's directories may be listed
    (Landlock allows listing beneath its root, never more), and what they
    hold is what the worker was given, none of the host's /root, /home or
    /etc/shadow; a file there is still read only if a read tree holds it."""
    pol = policies("@include default\n")
    layers = layers_of(run(["list", "--json", "--workers", "--plugins", plugins], pol))
    assert layer(layers, "landlock").startswith("landlock: ABI "), layers
    got = result_of(run(call(plugins, "list_dir", "/"), pol))
    assert "usr" in got["names"] and "proc" in got["names"], got
    assert not {"root", "home", "boot", "srv"} & set(got["names"]), got
    etc = result_of(run(call(plugins, "list_dir", "/etc"), pol))
    assert "ld.so.cache" in etc["names"] and "passwd" in etc["names"], etc
    assert not {"shadow", "hostname", "fstab", "ssh", "sudoers"} & set(etc["names"]), etc
    assert set(etc["names"]) < set(os.listdir("/etc")) | {"hosts", "passwd", "group", "nsswitch.conf"}, etc


def test_the_view_names_the_overflow_ids_and_only_those(run, plugins, policies):
    """nobody and nogroup (65534: what a user namespace shows for an id it
    does not map) are named, as code that looks a group up by name expects
    (test_subprocess); the plugin's own ids are still named "plugin", and
    no account of the host's is there."""
    got = result_of(run(call(plugins, "names"), policies("@include default\n")))
    assert got == {"me": "plugin", "my_group": "plugin", "users": ["nobody", "plugin", "root"],
                   "groups": ["nogroup", "plugin", "root"], "nogroup": 65534, "nobody": 65534}, got


def test_the_view_names_root_who_owns_its_files(run, plugins, policies):
    """/etc/passwd and /etc/group of the mount tree name root first (the owner
    of every file there: tarfile and pathlib look it up), then the plugin."""
    pol = policies("@include default\n")
    for path, first in (("/etc/passwd", "root:x:0:0:root:/root:/usr/sbin/nologin"), ("/etc/group", "root:x:0:")):
        got = run(call(plugins, "read_file", path), pol)
        assert result_of(got) == {"text": first}, explain(got)



def test_the_view_resolves_its_own_name_from_files(run, plugins, policies):
    """Without the host's network, the worker's host name and localhost
    resolve from the view's /etc/hosts, and another name is unknown at once
    (nsswitch: files only): no DNS query tries an internet socket. (glibc
    still asks for nscd's unix socket, refused and reported.)"""
    got = run(call(plugins, "resolve_names"), policies("@include default\n"))
    assert result_of(got) == {"hostname": "plugbox", "own": "127.0.1.1", "localhost": "127.0.0.1",
                              "other": {"type": "gaierror", "errno": socket.EAI_NONAME}}, explain(got)
    assert ": denied socket(0x2," not in got.stderr and ": denied socket(0xa," not in got.stderr, explain(got)

# ---- (c) scratch ------------------------------------------------------------

# Empty files cost no bytes: only the inode bound stops them. Without
# inodes=, one per 16K of scratch but at least 1024. The tmpfs root is one.
@pytest.mark.parametrize("setting,inodes,fits", [("@scratch 1M inodes=64", 64, range(32, 64)),
                                                 ("@scratch 1M", 1024, range(1000, 1024))])
def test_scratch_bounds_inodes(run, plugins, policies, setting, inodes, fits):
    pol = policies(setting + "\n" + SYSCALLS_MAY_WRITE + "@include default\n")
    cp = run(call(plugins, "fill_inodes", 20 * inodes), pol)
    assert cp.returncode == EXIT_OK, explain(cp)
    got = result_of(cp)
    assert got["error"] is not None and got["error"]["errno"] == errno.ENOSPC, explain(cp)
    assert got["made"] in fits, explain(cp)
    layers = layers_of(run(["list", "--json", "--workers", "--plugins", plugins], pol))
    assert f"(1M, {inodes} inodes)" in layer(layers, "filesystem"), layers


def test_scratch_is_private_bounded_and_fresh(run, plugins, policies):
    pol = policies("@scratch 1M\n" + SYSCALLS_MAY_WRITE + "@include default\n")
    token = "pb-scratch-" + uuid.uuid4().hex
    first = run(call(plugins, "scratch", token, 2 << 20), pol)
    assert first.returncode == EXIT_OK, explain(first)
    got = result_of(first)
    # /tmp, or /var/tmp when the plugin itself lives under /tmp.
    assert got["dir"] in ("/tmp", "/var/tmp"), explain(first)
    assert got["before"] == [], explain(first)
    assert got["after"] == [token, token + ".big"], explain(first)
    assert got["big_error"] is not None and got["big_error"]["errno"] in (errno.ENOSPC, errno.EFBIG), \
        explain(first)
    assert 0 < got["big_written"] <= 1 << 20, explain(first)
    # Nothing of it on the host.
    for d in ("/tmp", "/var/tmp", plugins / "probe"):
        assert not (Path(d) / token).exists(), d
        assert not (Path(d) / (token + ".big")).exists(), d
    layers = layers_of(run(["list", "--json", "--workers", "--plugins", plugins], pol))
    assert f", scratch at {got['dir']} (1M, 1024 inodes)" in layer(layers, "filesystem"), layers
    # The next worker starts with an empty scratch again.
    second = run(call(plugins, "scratch", token + "-2", 4096), pol)
    again = result_of(second)
    assert (again["dir"], again["before"]) == (got["dir"], []), explain(second)
    assert again["big_error"] is None, explain(second)


@pytest.mark.parametrize("text", [SYSCALLS_MAY_WRITE + "@include default\n", None],
                         ids=["syscalls-allow-writes", "shipped-default"])
def test_without_scratch_nothing_is_writable(run, plugins, policies, open_dir, text):
    host_dir = open_dir("world-writable")
    dirs = ["/tmp", "/var/tmp", "/dev/shm", "/", "/dev", "/plugbox/import",
            str(plugins / "probe"), str(host_dir), os.path.dirname(os.__file__)]
    name = "pb-write-" + uuid.uuid4().hex
    cp = run(call(plugins, "write_anywhere", dirs, name), policies(text))
    assert cp.returncode == EXIT_OK, explain(cp)
    got = result_of(cp)
    written = [d for d, outcome in got.items() if outcome == "written" or
               (d == "tempfile" and isinstance(outcome, str))]
    assert written == [], explain(cp)
    assert all(outcome["errno"] in (errno.EROFS, errno.ENOENT, errno.EACCES, errno.EPERM)
               for outcome in got.values()), explain(cp)
    assert os.listdir(host_dir) == []
    for d in dirs:
        assert not (Path(d) / name).exists(), d


# ---- (d) limits from the policy ---------------------------------------------

def test_memory_limit(run, plugins, policies):
    cp = run(call(plugins, "allocate", 512), policies("@limit memory 256M\n@include default\n"))
    assert result_of(cp) == {"error": "MemoryError", "then_allocated": 8 << 20}, explain(cp)
    # The same allocation fits under the shipped 1G.
    cp = run(call(plugins, "allocate", 512), policies(None))
    assert result_of(cp) == {"allocated": 512 << 20}, explain(cp)


@pytest.mark.parametrize("options", [(), ("--timeout", "10")], ids=["no-timeout", "longer-timeout"])
def test_call_time_limit(run, plugins, policies, options):
    cp = run(call(plugins, "sleep", 10, options=options),
             policies("@limit call-time 1s\n@include default\n"))
    assert cp.returncode == EXIT_DIED, explain(cp)
    assert cp.elapsed < scaled(8), explain(cp)
    assert any("timed out" in line and "@limit call-time" in line
               for line in supervisor_lines(cp, "probe")), explain(cp)


def test_cpu_limit(run, plugins, policies):
    # Spinning longer than any loaded machine needs for 2 s of CPU (the
    # hard limit, a second after the soft one): a return would be exit 0.
    cp = run(call(plugins, "spin", 40), policies("@limit cpu 1s\n@include default\n"))
    assert cp.returncode == EXIT_DIED, explain(cp)
    assert any("CPU time" in line and "@limit cpu 1s" in line
               for line in supervisor_lines(cp, "probe")), explain(cp)


def test_files_limit(run, plugins, policies):
    cp = run(call(plugins, "open_many", "/dev/null", 100), policies("@limit files 32\n@include default\n"))
    got = result_of(cp)
    assert got["errno"] == errno.EMFILE and 0 < got["opened"] < 32, explain(cp)


def test_processes_limit(run, plugins, policies):
    cp = run(call(plugins, "threads", 50), policies("@limit processes 8\n@include default\n"))
    assert cp.returncode == EXIT_OK, explain(cp)
    got = result_of(cp)
    # The worker survives: the function went on to start one more thread.
    assert got["error"] == "can't start new thread" and 0 < got["started"] < 8, explain(cp)


def test_a_pool_of_100_threads_runs_under_default_and_a_thread_bomb_still_ends(run, plugins, policies):
    """test_queue runs 100 threads at once: default allows 256 threads
    (@limit processes), and their 8 MiB stacks, with glibc's malloc
    arenas (64 MiB of address space each, up to 8 per CPU), fit in its
    6G of address space; a thread bomb still ends with RuntimeError, when
    the stacks it writes reach @limit memory 1G or the threads 256."""
    cp = run(call(plugins, "threads", 100), policies(None))
    assert cp.returncode == EXIT_OK and result_of(cp) == {"started": 100, "error": None}, explain(cp)
    cp = run(call(plugins, "threads", 2000), policies(None))
    assert cp.returncode == EXIT_OK, explain(cp)
    got = result_of(cp)
    assert got["error"] == "can't start new thread" and 100 < got["started"] < 256, explain(cp)


def test_memory_bounds_what_is_written_and_address_space_every_mapping(run, plugins, policies):
    """@limit memory (RLIMIT_DATA) stops a bomb that writes private pages;
    @limit address-space (RLIMIT_AS) stops one that writes shared pages,
    which RLIMIT_DATA does not count; a reservation nobody touches costs
    only address space."""
    pol = policies("@limit memory 256M\n@limit address-space 768M\n@include default\n")
    cp = run(call(plugins, "memory_bomb", "private", 2048), pol)
    got = result_of(cp)
    assert got["error"] == {"type": "MemoryError", "errno": None} and 0 < got["touched_mib"] < 256, explain(cp)
    cp = run(call(plugins, "memory_bomb", "shared", 2048), pol)
    got = result_of(cp)
    assert got["error"] == {"type": "OSError", "errno": errno.ENOMEM}, explain(cp)
    assert 256 < got["touched_mib"] < 768, explain(cp)
    # Read-only, untouched: past memory, within the address space; not past it.
    assert result_of(run(call(plugins, "reserve", 512), pol)) == {"reserved_mib": 512}
    got = result_of(run(call(plugins, "reserve", 1024), pol))
    assert got == {"type": "OSError", "errno": errno.ENOMEM}, got
    layers = layers_of(run(["list", "--json", "--workers", "--plugins", plugins], pol))
    assert layer(layers, "rlimits").startswith("rlimits: memory 256M address-space 768M "), layers


def test_default_reserves_4GiB_and_bounds_written_memory_at_1GiB(run, plugins, policies):
    """CPython's test_mmap maps 4 GiB of a sparse file read-only: under
    default that is address space, not memory; what a plugin writes stops
    at 1 GiB whether the pages are private or shared, since the shared
    ones a plugin holds cannot pass the address space (6G) either."""
    assert result_of(run(call(plugins, "reserve", 4200), policies(None))) == {"reserved_mib": 4200}
    cp = run(call(plugins, "memory_bomb", "private", 4096), policies(None))
    got = result_of(cp)
    assert got["error"] == {"type": "MemoryError", "errno": None} and 512 < got["touched_mib"] < 1024, explain(cp)


def test_memory_raised_alone_raises_the_address_space_with_it(plugbox, policies):
    """Over default's 6G of address space, `@limit memory 8G` means 8 GiB:
    the address space follows, named by the memory's line."""
    pol = policies("@limit memory 8G\n@include default\n")
    cp = plugbox.run(["policy", "show", "--policies", pol, "probe"])
    assert "  @limit memory 8G (probe.policy:1)" in show_layers(cp), explain(cp)
    assert "  @limit address-space 8G (probe.policy:1)" in show_layers(cp), explain(cp)


# ---- (e) network --------------------------------------------------------------

NETWORK_CASES = [
    # default: seccomp refuses the socket before the network is reached
    ("default", None, "socket", {errno.EACCES}),
    # the network-client syscalls but no network: Landlock (no TCP connect)
    # or the empty network namespace stops the connect
    ("client-rules-no-network", "@network none\n@include network-client\n", "connect",
     {errno.EACCES, errno.ENETUNREACH, errno.ECONNREFUSED}),
    # the same without Landlock: the namespace alone, where nothing is up
    ("namespace-alone", "@network none\n@layer landlock off\n@include network-client\n", "connect",
     {errno.ENETUNREACH}),
]


@pytest.mark.parametrize("text,step,errnos", [pytest.param(*c[1:], id=c[0]) for c in NETWORK_CASES])
def test_no_network(run, plugins, policies, listener, text, step, errnos):
    cp = run(call(plugins, "connect", listener.port, "hello"), policies(text))
    got = result_of(cp)
    assert got.get("step") == step and got.get("errno") in errnos, explain(cp)
    assert listener.received() == [], explain(cp)


def test_network_host(run, plugins, policies, listener):
    pol = policies("@include network-client\n")
    cp = run(call(plugins, "connect", listener.port, "hello"), pol)
    assert result_of(cp) == {"sent": 5}, explain(cp)
    assert listener.received() == [b"hello"]
    layers = layers_of(run(["list", "--json", "--workers", "--plugins", plugins], pol))
    assert "(host network)" in layer(layers, "namespaces"), layers
    assert "TCP allowed (@network host)" in layer(layers, "landlock"), layers


# ---- (g) /proc: the worker's own process, and nothing else ---------------------

def assert_own_proc(cp):
    assert cp.returncode == EXIT_OK, explain(cp)
    got = result_of(cp)
    assert got["pid"] == 1, explain(cp)
    assert got["entries"] == ["1", "self", "stat", "thread-self"], explain(cp)
    assert got["pids"] == [1] and got["pid1_is_self"] is True, explain(cp)
    assert got["status"]["Seccomp"] == "2" and got["status"]["NoNewPrivs"] == "1", explain(cp)
    assert got["status"]["Pid"] == "1", explain(cp)
    assert all(got["self"].values()) and got["maps_lines"] > 10, explain(cp)
    assert got["fds"][:6] == [0, 1, 2, 3, 4, 5], explain(cp)
    assert all(got["absent"].values()), explain(cp)
    # Read-only: no code injection through /proc/self/mem, no knob to turn.
    assert got["mem_rw"] != "opened" and got["mem_rw"]["errno"] in (errno.EROFS, errno.EACCES), explain(cp)
    assert got["oom_write"] != "written", explain(cp)
    return got


def test_proc_shows_the_worker_alone(run, plugins, policies):
    pol = policies(None)
    assert_own_proc(run(call(plugins, "proc_view"), pol))
    layers = layers_of(run(["list", "--json", "--workers", "--plugins", plugins], pol))
    assert layer(layers, "filesystem").endswith(", own /proc (this process only)"), layers


def test_proc_in_a_worker_from_the_fork_server(run, plugins, policies):
    pol = policies(None)
    assert_own_proc(run(call(plugins, "proc_view", options=("--spawn", "fork-server")), pol))


@pytest.mark.skipif(os.geteuid() != 0, reason="runs plugbox as uid 65534 through setpriv")
def test_proc_unprivileged_in_a_user_namespace(run, plugins, policies, plugbox, scratch):
    pol = policies(None)
    wrapped = Plugbox("setpriv", plugbox.env)
    cp = wrapped.run(["--reuid", "65534", "--regid", "65534", "--clear-groups", "--", plugbox.exe,
                      *map(str, call(plugins, "proc_view"))], env={"PLUGBOX_POLICIES": str(pol), "HOME": "/"})
    assert_own_proc(cp)


def test_proc_off_in_the_policy(run, plugins, policies):
    pol = policies("@proc off\n@include default\n")
    cp = run(call(plugins, "proc_view"), pol)
    assert cp.returncode == EXIT_OK, explain(cp)
    assert result_of(cp)["entries"] == {"type": "FileNotFoundError", "errno": errno.ENOENT}, explain(cp)
    layers = layers_of(run(["list", "--json", "--workers", "--plugins", plugins], pol))
    assert layer(layers, "filesystem").endswith(", no /proc (@proc off)"), layers


def test_no_proc_without_a_pid_namespace(run, plugins, policies):
    pol = policies("@layer namespaces off\n@include default\n")
    cp = run(call(plugins, "proc_view"), pol)
    assert cp.returncode == EXIT_OK, explain(cp)
    got = result_of(cp)
    # Landlock keeps the host's /proc out of reach; without Landlock there
    # is no wall at all, which `@layer namespaces off` says.
    if isinstance(got["entries"], dict):
        assert got["entries"]["errno"] in (errno.EACCES, errno.ENOENT), explain(cp)
    else:
        pytest.skip("no Landlock here: the host's /proc is visible with namespaces off")


def test_proc_that_cannot_be_mounted_fails_closed(run, plugins, policies):
    pol = policies(None)
    cp = run(call(plugins, "proc_view"), pol, deny=["--no-proc"])
    one_error_line(cp, "proc: mounting the worker's own /proc", "`@proc off` goes without", EPERM_TEXT)
    # ... even where namespaces are optional: this is not a namespace refused.
    pol = policies("@layer namespaces optional\n@include default\n")
    one_error_line(run(call(plugins, "proc_view"), pol, deny=["--no-proc"]), "proc: ")
    pol = policies("@proc off\n@include default\n")
    cp = run(call(plugins, "proc_view"), pol, deny=["--no-proc"])
    assert cp.returncode == EXIT_OK, explain(cp)


SCI_PLUGIN = """__deps_dir__ = "deps"
import plugbox


@plugbox.export
def numpy_work():
    import numpy
    a = numpy.arange(9.0).reshape(3, 3) + numpy.eye(3)
    return {"matmul": (a @ a).tolist(), "svd0": float(numpy.linalg.svd(a)[1][0]),
            "fft0": abs(numpy.fft.fft(numpy.ones(8))[0])}


@plugbox.export
def psutil_self():
    import psutil
    p = psutil.Process()
    return {"pid": p.pid, "name": p.name(), "status": p.status(), "threads": p.num_threads(),
            "rss": p.memory_info().rss, "created": p.create_time(), "fds": p.num_fds(),
            "user": p.cpu_times().user, "others": [q.pid for q in psutil.process_iter()]}
"""
DIST_PACKAGES = Path("/usr/lib/python3/dist-packages")


def sci_plugin(scratch, *packages):
    for pkg in packages:
        if not (DIST_PACKAGES / pkg).is_dir():
            pytest.skip(f"Debian's python3-{pkg} is not installed")
    plugin = scratch / "sci-plugins" / "sci"
    (plugin / "deps").mkdir(parents=True)
    (plugin / "__init__.py").write_text(SCI_PLUGIN)
    for pkg in packages:
        shutil.copytree(DIST_PACKAGES / pkg, plugin / "deps" / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    for dirpath, _, _ in os.walk(scratch / "sci-plugins"):
        os.chmod(dirpath, 0o755)
    return plugin.parent


def test_numpy_finds_blas_through_etc_alternatives(run, policies, scratch):
    plugins = sci_plugin(scratch, "numpy")
    cp = run(["call", "--plugins", plugins, "sci", "numpy_work"], policies(None))
    assert cp.returncode == EXIT_OK, explain(cp)
    got = result_of(cp)
    assert got["matmul"] == [[16.0, 20.0, 25.0], [48.0, 63.0, 76.0], [81.0, 104.0, 128.0]], explain(cp)
    assert 15.1 < got["svd0"] < 15.2 and got["fft0"] == 8.0, explain(cp)


def test_psutil_about_its_own_process(run, policies, scratch):
    plugins = sci_plugin(scratch, "psutil")
    cp = run(["call", "--plugins", plugins, "sci", "psutil_self"], policies(None))
    assert cp.returncode == EXIT_OK, explain(cp)
    got = result_of(cp)
    assert got["pid"] == 1 and got["name"] == "plugbox-worker" and got["status"] == "running", explain(cp)
    assert got["threads"] >= 1 and got["rss"] > 1 << 20 and got["fds"] >= 6, explain(cp)
    assert got["created"] > 1e9 and got["user"] >= 0, explain(cp)
    assert got["others"] == [1], explain(cp)


# ---- (f) policy show ----------------------------------------------------------

def line_of(path, prefix):
    numbers = [n for n, line in enumerate(Path(path).read_text().splitlines(), 1)
               if line.startswith(prefix)]
    assert len(numbers) == 1, (path, prefix)
    return numbers[0]


def show_layers(cp):
    """The lines of `policy show` between 'layers:' and the rules."""
    assert cp.returncode == EXIT_OK, explain(cp)
    lines = cp.stdout.splitlines()
    start = lines.index("layers:") + 1
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("  @"))
    return lines[start:end]


def test_policy_show_prints_the_layers_with_their_lines(plugbox, policies):
    pol = policies("@limit memory 256M\n@scratch 1M\n@network host\n@layer landlock required\n"
                   "@include default\n")
    cp = plugbox.run(["policy", "show", "--policies", pol, "probe"])
    d = pol / "default.policy"
    at = lambda prefix: f"default.policy:{line_of(d, prefix)}"  # noqa: E731
    assert show_layers(cp) == [
        f"  @layer namespaces required ({at('@layer namespaces')})",
        "  @layer landlock required (probe.policy:4)",
        "  @network host (probe.policy:3)",
        "  @scratch 1M inodes=1024 (probe.policy:2)",
        f"  @scratch-exec on ({at('@scratch-exec')})",
        "  @proc on (built in)",
        "  @limit memory 256M (probe.policy:1)",
        f"  @limit address-space 6G ({at('@limit address-space')})",
        f"  @limit cpu 60s ({at('@limit cpu')})",
        f"  @limit files 256 ({at('@limit files')})",
        f"  @limit processes 256 ({at('@limit processes')})",
        f"  @limit file-size unlimited ({at('@limit file-size')})",
        f"  @limit core 0 ({at('@limit core')})",
        f"  @limit call-time 60s ({at('@limit call-time')})",
    ], explain(cp)


def test_policy_show_built_in_values(plugbox, policies):
    # Only python.policy (no settings): every value is plugbox's own default,
    # the same values default.policy writes out but file-size, which
    # default.policy lifts (its scratch has a size; memfd_create is refused).
    pol = policies("@limit cpu 1500ms\n@limit call-time 1500ms\n@include python\n")
    cp = plugbox.run(["policy", "show", "--policies", pol, "probe"])
    assert show_layers(cp) == [
        "  @layer namespaces required (built in)",
        "  @layer landlock optional (built in)",
        "  @network none (built in)",
        "  @scratch none (built in)",
        "  @scratch-exec off (built in)",
        "  @proc on (built in)",
        "  @limit memory 1G (built in)",
        "  @limit address-space 6G (built in)",
        "  @limit cpu 2s (probe.policy:1)",            # CPU seconds round up
        "  @limit files 256 (built in)",
        "  @limit processes 256 (built in)",
        "  @limit file-size 16M (built in)",
        "  @limit core 0 (built in)",
        "  @limit call-time 1500ms (probe.policy:2)",
    ], explain(cp)
