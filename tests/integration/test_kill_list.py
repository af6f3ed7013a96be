"""The kill list (DESIGN.md invariant 3): under the shipped default policy
what a policy does not name fails with an errno, but what only an attack
does still ends the worker. Every entry of the kill list is attempted for
real by tests/plugins/policy/attacker (a marker printed just before the raw
call proves the attempt) and must end with exit 3 naming the plugin and the
syscall:

  - each member of the @attack group, as `plugbox policy groups` prints it
    (so a syscall added to the group is tested without editing this file);
  - clone with namespace flags, TIOCSTI, and plugbox's built-in guard: the
    x32 and i386 entry points, replacing the SIGSYS handler.

clone3's flags are in memory where no filter can see them: it fails with
ENOSYS whatever they are, and glibc falls back to clone.

`plugbox learn` (issue 19, finding 3) lets a call make what the policy
would deny, to write it down; it must never hand the plugin a namespace:
clone3 stays ENOSYS, clone and unshare with namespace flags are killed, as
root and as an unprivileged user. x86_64 only (raw syscall numbers).
"""

import ctypes
import ctypes.util
import os
import re
import shutil
import subprocess

import pytest

from pbtest import (EXIT_OK, EXIT_SANDBOX, assert_killed_for, assert_reported, explain, plugin_lines,
                    result_of, x86_64_only)

pytestmark = x86_64_only

PLUGIN = "attacker"


def _parse_groups(text):
    """{group: [members]} from the output of `plugbox policy groups`."""
    groups, current = {}, None
    for line in text.splitlines():
        m = re.match(r"^@([\w-]+):", line)
        if m:
            current = groups.setdefault(m.group(1), [])
        elif line.startswith(" ") and current is not None:
            current.extend(line.split())
    return groups


def _expand(groups, name):
    out = []
    for member in groups[name]:
        out.extend(_expand(groups, member[1:]) if member.startswith("@") else [member])
    return out


def _attack_members():
    """The @attack group, expanded; read at collection time for parametrize
    (PLUGBOX is set by make check)."""
    exe = os.environ.get("PLUGBOX")
    if not exe:
        return []
    text = subprocess.run([exe, "policy", "groups"], capture_output=True, text=True).stdout
    groups = _parse_groups(text)
    return sorted(set(_expand(groups, "attack"))) if "attack" in groups else []


ATTACK = _attack_members()


def _syscall_number(name):
    libseccomp = ctypes.CDLL(ctypes.util.find_library("seccomp") or "libseccomp.so.2")
    nr = libseccomp.seccomp_syscall_resolve_name(name.encode())
    assert nr >= 0, f"libseccomp does not know {name}"
    return nr


# Harmless arguments where zeros would not be: a query, or a target that
# cannot be harmed. Everything else gets zeros (NULL pointers, descriptor
# 0 = /dev/null, no flags), which the kernel refuses or treats as a no-op.
ARGS = {
    "ptrace": [2, 1, 0, 0],              # PTRACE_PEEKDATA of pid 1 (0 would be PTRACE_TRACEME)
    "personality": [0xFFFFFFFF],         # only asks for the current persona
    "keyctl": [0, -4],                   # KEYCTL_GET_KEYRING_ID of KEY_SPEC_USER_KEYRING
}


def test_the_kill_list_is_the_danger_table(plugbox):
    cp = plugbox.run(["policy", "groups"])
    assert cp.returncode == EXIT_OK, explain(cp)
    groups = _parse_groups(cp.stdout)
    assert "attack" in groups, explain(cp)
    members = set(_expand(groups, "attack"))
    assert members == set(ATTACK) and len(members) >= 40, members
    for name in ("ptrace", "process_vm_readv", "process_vm_writev", "bpf", "io_uring_setup",
                 "io_uring_enter", "io_uring_register", "userfaultfd", "perf_event_open", "mount",
                 "umount2", "pivot_root", "chroot", "unshare", "setns", "keyctl", "add_key",
                 "request_key", "kexec_load", "kexec_file_load", "init_module", "finit_module",
                 "delete_module", "personality", "reboot", "iopl", "ioperm", "modify_ldt",
                 "open_by_handle_at", "pidfd_getfd"):
        assert name in members, name


@pytest.mark.parametrize("name", ATTACK)
def test_each_attack_syscall_kills_the_worker(plugbox, paths, name):
    nr = _syscall_number(name)
    args = ARGS.get(name, [0, 0, 0, 0, 0, 0])
    cp = plugbox.call(paths.plugins / "policy", PLUGIN, "syscall", f'"{name}"', str(nr), str(args),
                      options=["--timeout", "30"])
    assert f"[about to call {name}]" in plugin_lines(cp, PLUGIN), explain(cp)
    assert_killed_for(cp, PLUGIN, name)
    assert f"{name}(" in cp.stderr and "'@attack: kill' at python.policy:" in cp.stderr, explain(cp)


@pytest.mark.parametrize("function, args, syscall, rule", [
    ("clone_namespaces", [], "clone", "'clone: arg0 & CLONE_NEWNS|"),
    ("tiocsti", [], "ioctl", "'ioctl: arg1 == TIOCSTI"),
    ("x32", ["39"], "getpid", "'kill what is not a native x86_64 syscall' (plugbox's built-in guard)"),
    ("int80", [], "getpid", "'kill what is not a native x86_64 syscall' (plugbox's built-in guard)"),
])
def test_the_rest_of_the_kill_list_kills(plugbox, paths, function, args, syscall, rule):
    cp = plugbox.call(paths.plugins / "policy", PLUGIN, function, *args, options=["--timeout", "30"])
    assert any(line.startswith("[about to ") for line in plugin_lines(cp, PLUGIN)), explain(cp)
    assert_killed_for(cp, PLUGIN, syscall)
    assert rule in cp.stderr, explain(cp)
    if function == "x32":
        assert "via the x32 ABI" in cp.stderr, explain(cp)
    if function == "int80":
        assert "via the i386 ABI" in cp.stderr, explain(cp)


def test_replacing_the_sigsys_handler_kills(plugbox, paths):
    cp = plugbox.call(paths.plugins / "policy", "handler_games", "replace_handler")
    assert plugin_lines(cp, "handler_games") == ["[about to replace the SIGSYS handler]"], explain(cp)
    assert cp.returncode == EXIT_SANDBOX and cp.stdout == "", explain(cp)
    assert "stopped by the sandbox: killed by the seccomp filter without a report" in cp.stderr, explain(cp)


def test_clone3_fails_with_enosys_whatever_its_flags(plugbox, paths):
    cp = plugbox.call(paths.plugins / "policy", PLUGIN, "clone3_namespaces")
    assert cp.returncode == EXIT_OK, explain(cp)
    assert result_of(cp) == {"survived": True, "rc": -1, "errno": "ENOSYS"}, explain(cp)


# ---- learn mode never makes a namespace (issue 19, finding 3) ----------------

def _unprivileged_runner(plugbox, paths):
    """Run plugbox as uid/gid 65534 with no supplementary groups, or None
    where that cannot work here (no setpriv, not root, or plugbox itself
    cannot start a worker unprivileged on this machine)."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or not setpriv:
        return None

    def run(argv):
        full = [setpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups", plugbox.exe,
                *[str(a) for a in argv]]
        proc = subprocess.run(full, env=plugbox.env, capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)
        proc.args = full[6:]
        return proc
    probe = run(["call", "--plugins", paths.plugins / "policy", PLUGIN, "syscall", '"getpid"', "39", "[]"])
    if probe.returncode != EXIT_OK:
        return None
    return run


IDENTITIES = ["root", "uid 65534"]


@pytest.fixture(params=IDENTITIES)
def learn_runner(request, plugbox, paths):
    if request.param == "root":
        if os.geteuid() != 0:
            pytest.skip("not root")
        return plugbox.run
    runner = _unprivileged_runner(plugbox, paths)
    if runner is None:
        pytest.skip("plugbox cannot run workers as uid 65534 here (setpriv, user namespaces)")
    return runner


def test_learn_keeps_clone3_enosys(learn_runner, paths):
    cp = learn_runner(["learn", "--plugins", paths.plugins / "policy", PLUGIN, "clone3_namespaces"])
    assert "[about to call clone3]" in plugin_lines(cp, PLUGIN), explain(cp)
    assert cp.returncode == EXIT_OK, explain(cp)
    assert '"rc":-1,"errno":"ENOSYS"' in cp.stderr, "clone3 made a child under learn" + explain(cp)
    assert not any(line.startswith("clone3") for line in cp.stdout.splitlines()), \
        "the learned policy allows clone3" + explain(cp)


@pytest.mark.parametrize("function, syscall", [("unshare_namespaces", "unshare"),
                                               ("clone_namespaces", "clone")])
def test_learn_kills_namespace_flags(learn_runner, paths, function, syscall):
    cp = learn_runner(["learn", "--plugins", paths.plugins / "policy", PLUGIN, function])
    assert f"[about to call {syscall}]" in plugin_lines(cp, PLUGIN), explain(cp)
    assert "survived" not in cp.stdout + cp.stderr, f"{syscall} ran under learn" + explain(cp)
    # (learn prints what it learned before the kill on stdout)
    assert cp.returncode == EXIT_SANDBOX, explain(cp)
    assert_reported(cp, PLUGIN, syscall)


def test_learn_makes_no_namespace_where_the_policy_only_refuses_it(learn_runner, paths, policies_with):
    """An operator's default that answers unshare with a mere errno: learn
    turns errnos into log-and-continue, but never for namespaces."""
    policies = policies_with(default="unshare: return EPERM\n@include python\n")
    cp = learn_runner(["learn", "--plugins", paths.plugins / "policy", "--policies", policies, PLUGIN,
                       "unshare_namespaces"])
    assert "[about to call unshare]" in plugin_lines(cp, PLUGIN), explain(cp)
    assert '"rc":0' not in cp.stderr, "unshare made namespaces under learn" + explain(cp)
    assert cp.returncode == EXIT_SANDBOX, explain(cp)
    assert_reported(cp, PLUGIN, "unshare")


def test_learn_still_learns_what_is_harmless(plugbox, paths):
    # getcpu is no attack and default does not name it: learn lets it
    # through and writes it down.
    cp = plugbox.run(["learn", "--plugins", paths.plugins / "policy", PLUGIN, "syscall", '"getcpu"',
                      str(_syscall_number("getcpu")), "[0, 0, 0]"])
    assert cp.returncode == EXIT_OK, explain(cp)
    assert '"rc":0' in cp.stderr, explain(cp)
    assert "getcpu: 1" in cp.stdout.splitlines(), explain(cp)
