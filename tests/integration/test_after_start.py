"""@after-start rules against the plugin's own import-time code
(worker/sandbox.c loads them after it; supervisor/runtime/filter_check.c
reads them back).

The attack: at import time a plugin loads a seccomp filter of its own that
answers every later seccomp() with "success" without loading anything, so
the worker's load of the @after-start rules is a no-op and the supervisor
would believe them in force. As root the supervisor reads the filter chain
of every thread of the worker when it says Hello and refuses a worker whose
chain is not the policy's; an after-start-denied call is then never made.
"""

import os
import shutil

import pytest

from pbtest import EXIT_OK, explain

# seccomp(SECCOMP_SET_MODE_FILTER, 0, {4, prog}) where prog answers
# seccomp() (x86_64 317, aarch64 277) with SECCOMP_RET_ERRNO | 0 and allows
# everything else: every later filter "loads" and is never in force.
NEUTER = r'''
import ctypes, os, platform
import plugbox

_NR = {"x86_64": 317, "aarch64": 277}[platform.machine()]
class _Insn(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]
class _Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_Insn))]
_insns = (_Insn * 4)(_Insn(0x20, 0, 0, 0),           # ld [nr]
                     _Insn(0x15, 0, 1, _NR),         # jeq seccomp
                     _Insn(0x06, 0, 0, 0x00050000),  # ret ERRNO|0: "success"
                     _Insn(0x06, 0, 0, 0x7fff0000))  # ret ALLOW
_prog = _Prog(4, _insns)
_libc = ctypes.CDLL(None, use_errno=True)
NEUTERED = _libc.syscall(_NR, 1, 0, ctypes.byref(_prog)) == 0
'''

# What both plugins export: open() is denied by strict's @after-start rules.
PROBE = r'''
import os
import shutil
import plugbox

@plugbox.export
def probe():
    try:
        os.close(os.open("/dev/null", os.O_RDONLY))
    except OSError as e:
        return f"refused {e.errno}"
    return "opened"
'''


@pytest.fixture
def strict_setup(scratch, paths):
    plugins = scratch / "plugins"
    for name, text in (("neuter", NEUTER + PROBE), ("benign", PROBE)):
        (plugins / name).mkdir(parents=True)
        (plugins / name / "__init__.py").write_text(text)
    policies = scratch / "policies"
    policies.mkdir()
    for f in (paths.srcdir.parent / "policies").glob("*.policy"):
        (policies / f.name).write_text(f.read_text())
    (policies / "neuter.policy").write_text("@include strict\n")
    (policies / "benign.policy").write_text("@include strict\n")
    for p in [scratch, *scratch.rglob("*")]:
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    return plugins, policies


def call(plugbox, plugins, policies, plugin, function, spawn="exec"):
    return plugbox.run(["call", "--plugins", plugins, "--policies", policies, "--spawn", spawn, plugin, function])


SPAWN = pytest.mark.parametrize("spawn", ["exec", "fork-server"])


@SPAWN
def test_after_start_rules_bind_a_benign_plugin(plugbox, strict_setup, spawn):
    plugins, policies = strict_setup
    cp = call(plugbox, plugins, policies, "benign", "probe", spawn)
    assert (cp.returncode, cp.stdout) == (EXIT_OK, '"refused 13"\n'), explain(cp)
    shutil.rmtree(plugins / "neuter")
    cp = plugbox.run(["list", "--plugins", plugins, "--json", "--workers"], env={"PLUGBOX_POLICIES": str(policies)})
    assert cp.returncode == EXIT_OK, explain(cp)
    if os.geteuid() == 0:
        assert "@after-start rules read back from every thread" in cp.stdout, cp.stdout
    else:
        assert "@after-start rules not verified" in cp.stdout, cp.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="reading a worker's filters needs root; "
                    "unprivileged, `plugbox list` says the rules are not verified")
@SPAWN
def test_a_plugin_that_neuters_seccomp_at_import_is_refused(plugbox, strict_setup, spawn):
    """The after-start-denied open() must stay denied: the worker is refused
    (exit 4, naming the reason) instead of running with the rules undone."""
    plugins, policies = strict_setup
    cp = call(plugbox, plugins, policies, "neuter", "probe", spawn)
    assert cp.stdout != '"opened"\n', "the @after-start rule was undone" + explain(cp)
    assert cp.returncode == 4, explain(cp)
    assert "the worker's @after-start rules are not in force" in cp.stderr, explain(cp)
    assert "neuter" in cp.stderr
