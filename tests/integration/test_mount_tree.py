"""The worker's mount tree is read-only, nosuid and nodev wherever the
plan says so, whichever way the jail made it (supervisor/jail/jail_enter.c):
one recursive mount_setattr after the read-only binds (Linux 5.12 and
later), or one remount per bind, the path of older kernels, which
PLUGBOX_MOUNT_SETATTR=off takes on any kernel. Each test reads the worker's
own /proc/self/mountinfo, in every spawn mode that builds a mount tree.

The recursive path also makes read-only what is mounted beneath a bound
directory on the host, which a remount of the bind alone leaves as the host
has it: a test mounts a writable tmpfs inside the plugin's directory (as
root) and finds it read-only in the worker, and, through the per-bind path,
writable, which proves which path ran.
"""

import json
import os
import subprocess

import pytest

from pbtest import EXIT_OK, explain, result_of

DEVICES = {"/dev/null", "/dev/zero", "/dev/urandom", "/dev/random"}
SCRATCH_POLICY = "openat: 1\n@file-write: 1\n@scratch 1M\n@include default\n"


@pytest.fixture
def probe_plugins(copy_plugins, paths):
    return copy_plugins(paths.plugins / "layers", only=["probe"])


def mounts(plugbox, plugins, pol, spawn, setattr_on):
    env = {"PLUGBOX_POLICIES": str(pol)}
    if not setattr_on:
        env["PLUGBOX_MOUNT_SETATTR"] = "off"
    cp = plugbox.run(["call", "--plugins", plugins, "--spawn", spawn, "probe", "mounts"], env=env)
    assert cp.returncode == EXIT_OK, explain(cp)
    return {point: (set(opts.split(",")), fstype) for point, opts, fstype in result_of(cp)}, cp


@pytest.mark.parametrize("setattr_on", [True, False], ids=["mount_setattr", "per-bind"])
@pytest.mark.parametrize("spawn", ["exec", "fork-server", "zygote"])
def test_every_mount_is_as_planned(plugbox, probe_plugins, policies_with, spawn, setattr_on):
    pol = policies_with(probe=SCRATCH_POLICY)
    got, cp = mounts(plugbox, probe_plugins, pol, spawn, setattr_on)
    assert "/" in got and str(probe_plugins / "probe") in got, explain(cp)
    assert {"/dev/null", "/plugbox/proc"} <= set(got), got
    scratch = [p for p in ("/tmp", "/var/tmp") if p in got and got[p][1] == "tmpfs"]
    assert len(scratch) == 1, got
    for point, (opts, fstype) in got.items():
        assert "nosuid" in opts, (point, opts)
        if point == scratch[0]:
            assert {"rw", "nodev"} <= opts, (point, opts)  # noexec: as @scratch-exec says
        elif point in DEVICES:
            assert "ro" in opts and "nodev" not in opts, (point, opts)
        else:
            assert {"ro", "nodev"} <= opts, (point, opts)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs on the host needs root")
@pytest.mark.parametrize("spawn", ["exec", "fork-server"])
def test_a_writable_mount_beneath_a_bind_is_read_only(plugbox, probe_plugins, policies_with, spawn):
    below = probe_plugins / "probe" / "below"
    below.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "pb-test-below", str(below)], check=True)
    try:
        pol = policies_with(probe="@include default\n")
        batched, cp = mounts(plugbox, probe_plugins, pol, spawn, True)
        assert str(below) in batched, explain(cp)
        assert "ro" in batched[str(below)][0], batched[str(below)]
        per_bind, cp = mounts(plugbox, probe_plugins, pol, spawn, False)
        assert "rw" in per_bind[str(below)][0], (per_bind[str(below)], "the per-bind path did not run")
    finally:
        subprocess.run(["umount", "-l", str(below)], check=False)
