"""Harmless calls under the shipped default policy (DESIGN.md invariant 3,
issue 18 items 2 and 4): what real libraries do works, or fails with the
errno the code expects, and nothing of it kills the worker.

  - workload step `harmless_calls` (tests/plugins/policy/workload): umask,
    chdir/fchdir in its own directory, clock_getres, sched_yield, fsync,
    dup/dup3, readv/writev, positioned I/O, sendfile, eventfd, statx, msync,
    waitpid/waitid (ChildProcessError), pidfd_open and pidfd_send_signal to
    itself, faccessat(2), readlinkat, fadvise, splice, its own scheduling,
    priority and limits, tcgetpgrp/tcsetpgrp (EBADF), uuid1, prctl, capget,
    get_mempolicy, extended attributes... with their real results;
  - scratchy: sqlite3 on a file, write-fsync-rename, pwrite, shutil.copy2,
    copy_file_range and mmap.flush in a `@scratch` directory;
  - callback: a ctypes callback through libc's qsort, which default allows
    and strict (W^X) refuses with MemoryError.
"""
import json
import os

import pytest

from pbtest import EXIT_OK, explain, result_of, supervisor_lines, x86_64_only

pytestmark = x86_64_only


@pytest.fixture
def policies(policies_with):
    return policies_with


def _killed_or_died(cp):
    return "stopped by the sandbox" in cp.stderr or " died" in cp.stderr


def test_harmless_calls_get_their_real_results(plugbox, paths, policies):
    cp = plugbox.call(paths.plugins / "policy", "workload", "everything", '["harmless_calls"]',
                      options=["--policies", policies()])
    assert cp.returncode == EXIT_OK and not _killed_or_died(cp), explain(cp)
    step = result_of(cp)["harmless_calls"]
    assert step["ok"], step
    v = step["value"]
    assert v["umask"] and v["chdir"] and v["fchdir"], v
    assert v["clock_getres"] and v["sched_yield"] and v["sched"] == [True, 0, 0, 0], v
    assert v["getpgid"] and v["fsync"] and v["fstatvfs"], v
    assert v["writev"] == 4 and v["readv"] == [4, "abcd"], v
    # positioned I/O on a pipe: the kernel's own answer, not the sandbox's
    assert v["pwrite"] == v["pwritev2"] == v["preadv2"] == "ESPIPE", v
    assert v["pwritev"] == [-1, "ESPIPE"] and v["preadv"] == [-1, "ESPIPE"], v
    assert v["sendfile"] == [4, "firs"], v
    assert v["copy_file_range"] in ("EINVAL", "EXDEV", None), v
    assert v["dup"] and v["dup3"] == [True, False], v
    assert v["closerange"] == ["EBADF", "EBADF", "EBADF"], v
    assert v["eventfd"] == 3 and v["statx"] and v["msync"], v
    assert v["xattr"][:3] == [True, True, True] and v["xattr"][3] in ("ENODATA", "ENOTSUP"), v
    # a worker has no children: ChildProcessError, as asyncio expects
    assert v["waitpid"] == "ChildProcessError" and v["waitid"] == "ChildProcessError", v
    # its own pid only: a pidfd and a signal to itself; another pid as on a kernel without pidfds
    assert v["pidfd_open"] is None and v["pidfd_send_signal"] is None, v
    assert v["pidfd_open_other"] == "ENOSYS", v
    assert v["pidfd_open_invalid"] == "EINVAL", v
    assert v["faccessat2"] is True and v["faccessat"] == [0, None] and v["readlinkat"] == "EINVAL", v
    assert v["fadvise"] is None and v["splice"] == [4, "firs"], v
    # its own scheduling, priority and limits (pid 0 and its own); another pid: EPERM
    assert v["own_sched"] == {"0": [0, 0], "self": [0, 0]} and v["sched_rr_get_interval"], v
    assert v["sched_other_pid"] in ("EPERM", "ESRCH"), v
    # another pid's limits: none in its pid namespace, as resource.prlimit(-1) expects
    assert v["prlimit_other"] == "ESRCH", v
    # its own ids may be set (they stay what they were); root may not
    assert v["own_ids"] == [None] * 6 + [True, True], v
    assert v["root_ids"] == ["EPERM", "EPERM", "EPERM"], v
    assert v["tcpgrp"] == ["EBADF", "EBADF"], v
    assert v["uuid1"] == 1 and v["getrusage"] and v["affinity"], v
    # a plugin can check that it is sandboxed (seccomp mode 2, no_new_privs)
    assert v["prctl"] == {"seccomp": 2, "no_new_privs": 1, "set_name": 0, "get_name": "pb-harmless",
                          "set_dumpable": [-1, "EPERM"]}, v
    assert v["capget"] == [0, [0, 0, 0, 0, 0, 0]], v
    assert v["get_mempolicy"] == [-1, "EPERM"], v
    # none of these is reported as a denial but uuid1's probes for the
    # uuidd socket and a network interface (socket: trap EACCES) and the
    # attempts at root, which the policy refuses and reports
    denials = [line for line in supervisor_lines(cp, "workload") if ": denied " in line]
    for call in ("setuid(", "setresgid(", "setgroups("):
        assert any(f": denied {call}" in line for line in denials), explain(cp)
    assert all(any(f": denied {c}" in line for c in ("socket(", "setuid(", "setresgid(", "setgroups("))
               for line in denials), explain(cp)


def test_files_in_scratch(plugbox, paths, policies):
    """The plugin guide's temporary-directory recipe: sqlite3, fsync and an
    atomic rename, pwrite, shutil.copy2, mmap.flush."""
    cp = plugbox.call(paths.plugins / "policy", "scratchy", "files", options=["--policies", policies("scratch")])
    assert cp.returncode == EXIT_OK and not _killed_or_died(cp), explain(cp)
    # The scratch directory is /tmp, or /var/tmp when the worker's view
    # already holds something under /tmp (a build tree there: jail.c).
    under_tmp = any(str(p).startswith("/tmp/") for p in
                    (os.environ.get("PLUGBOX_WORKER", ""), paths.plugins, policies("scratch")))
    assert result_of(cp) == {
        "tmpdir": "/var/tmp" if under_tmp else "/tmp", "sqlite": [1000, 500500], "replace": '{"v": 2}', "pwrite": "hello World",
        "copy2": [True, True], "copy_file_range": 8, "mmap_flush": "mmap!", "cleaned": True,
    }, explain(cp)
    assert [line for line in supervisor_lines(cp, "scratchy") if ": denied " in line] == [], explain(cp)


def test_ctypes_callback_works_under_default(plugbox, paths, policies):
    cp = plugbox.call(paths.plugins / "policy", "callback", "qsort", "[5, -3, 9, 1, 0]",
                      options=["--policies", policies()])
    assert cp.returncode == EXIT_OK, explain(cp)
    assert result_of(cp) == {"sorted": [-3, 0, 1, 5, 9], "callbacks": True}, explain(cp)
    assert supervisor_lines(cp, "callback") == [], explain(cp)


def test_strict_keeps_w_xor_x_and_breaks_callbacks(plugbox, paths, policies):
    cp = plugbox.call(paths.plugins / "policy", "callback", "qsort", "[2, 1]",
                      options=["--policies", policies(callback="@include strict\n")])
    assert cp.returncode == EXIT_OK, explain(cp)
    assert result_of(cp) == "MemoryError", explain(cp)
    assert any("denied mmap(" in line and "strict.policy:" in line
               for line in supervisor_lines(cp, "callback")), explain(cp)


def test_sparse_files_in_scratch_and_the_bytes_still_bounded(plugbox, paths, policies):
    """test_mmap, test_io and test_zipfile write one byte at 2-4 GiB: a
    sparse file, which `default` allows (@limit file-size unlimited); the
    bytes a worker writes stay bounded by its scratch's size, and a memfd,
    which no scratch would bound, stays refused and reported."""
    cp = plugbox.call(paths.plugins / "policy", "scratchy", "sparse", str(4 << 30), "16",
                      options=["--policies", policies("scratch")])
    assert cp.returncode == EXIT_OK and not _killed_or_died(cp), explain(cp)
    got = result_of(cp)
    assert got["size"] == (4 << 30) + 1 and got["blocks_kib"] <= 64 and got["mapped"] == "!", got
    assert got["fill"] == "ENOSPC" and got["filled_mib_within_scratch"], got
    assert got["memfd"] == "EPERM", got
    assert any(": denied memfd_create(" in line for line in supervisor_lines(cp, "scratchy")), explain(cp)


def test_files_in_scratch_may_be_executable_under_default_not_strict(plugbox, paths, policies):
    """test_shutil's TestWhich and test_mmap write a file in scratch, then
    find it with shutil.which or map it PROT_EXEC: `default` gives up W^X,
    so its scratch is not noexec (@scratch-exec on); running the file stays
    refused. strict keeps W^X, and a noexec scratch with it (@scratch-exec
    off: strict itself opens no file after start, so a policy saying just
    that shows what it does)."""
    cp = plugbox.call(paths.plugins / "policy", "scratchy", "executable",
                      options=["--policies", policies("scratch")])
    assert cp.returncode == EXIT_OK and not _killed_or_died(cp), explain(cp)
    assert result_of(cp) == {"which": True, "access_x": True, "map_exec": "#!", "execv": "EPERM"}, explain(cp)
    noexec = policies(scratchy="openat: 1\n@file-write: 1\n@scratch 16M\n@scratch-exec off\n@include default\n")
    cp = plugbox.call(paths.plugins / "policy", "scratchy", "executable", options=["--policies", noexec])
    assert cp.returncode == EXIT_OK and not _killed_or_died(cp), explain(cp)
    assert result_of(cp) == {"which": False, "access_x": False, "map_exec": "EPERM", "execv": "EPERM"}, explain(cp)
    cp = plugbox.run(["list", "--json", "--workers", "--plugins", str(paths.plugins / "policy")],
                     env={"PLUGBOX_POLICIES": str(noexec)})
    (listed,) = [p for p in json.loads(cp.stdout) if p["name"] == "scratchy"]
    assert any(", scratch at " in line and "1024 inodes, noexec)" in line for line in listed["layers"]), listed
    cp = plugbox.run(["policy", "show", "--policies", str(noexec), "strict"])
    assert "  @scratch-exec off (strict.policy:" in cp.stdout, explain(cp)

