"""The policy language as an operator meets it: `plugbox policy check`, `show`
and `groups` on good and bad policy files.

Every bad file is checked for the exact error lines, FILE:LINE:COL: message,
with FILE as it was passed on the command line (or, for an included file,
as the including file's directory plus NAME.policy).
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pbtest import EXIT_OK, EXIT_USAGE, explain


def shipped_dir(paths):
    return Path(os.environ.get("PLUGBOX_POLICIES") or paths.srcdir.parent / "policies")


@pytest.fixture
def pdir(scratch, paths):
    """A directory holding copies of the shipped default and python policies,
    so that a test policy can `@include default`."""
    for name in ("default", "python"):
        shutil.copy(shipped_dir(paths) / f"{name}.policy", scratch / f"{name}.policy")
    return scratch


def write(directory, name, content):
    path = directory / f"{name}.policy"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def line_of(path, prefix):
    """The number of the first line of path that starts with prefix."""
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if line.startswith(prefix):
            return n
    raise AssertionError(f"{path} has no line starting {prefix!r}")


INC = "@include default\n"
FLOOR = "read: 1\nwrite: 1\nrt_sigreturn: 1\nexit_group: 1\n"
LINE_TOO_LONG = INC + "# " + "x" * 5000 + "\n"
SIXTY_FIVE = "lseek: " + " && ".join(f"arg1 != {i}" for i in range(65)) + "\n"
FLOOR_MSG = ("the worker itself needs '{}' allowed whatever its arguments (for its channel, "
             "its violation reports and its exit); allow it or @include default")
ACTIONS = "expected an action: 1, allow, kill, log, trap [ERRNO] or return ERRNO"
NO_PATH = "@include names a policy in the same directory, [A-Za-z0-9_-]+ with no path: "
HOST_NONE = "@host-call needs the names of the host functions it grants"
HOST_WILDCARD = "@host-call has no wildcard: list every host function the plugin may call by name"
HOST_NAME = "([A-Za-z_][A-Za-z0-9_]*)"

# (id, {file name: content}: the first is the one checked, expected stderr lines)
# {F} is the checked file's path as passed, {D} its directory.
BAD = [
    ("unknown-syscall-near", {"t": INC + "openatt: 1\n"},
     ["{F}:2:1: unknown syscall 'openatt'; did you mean 'openat'?"]),
    ("unknown-syscall-indented", {"t": INC + "    getpidd: 1\n"},
     ["{F}:2:5: unknown syscall 'getpidd'; did you mean 'getpid'?"]),
    ("unknown-syscall-far", {"t": INC + "zzzzzzzzzz: 1\n"},
     ["{F}:2:1: unknown syscall 'zzzzzzzzzz'"]),
    ("missing-colon", {"t": INC + "read 1\n"},
     ["{F}:2:6: expected ':' after 'read'"]),
    ("no-syscall-name", {"t": INC + ": 1\n"},
     ["{F}:2:1: expected a syscall name, @include, @default or @GROUP"]),
    ("bad-action", {"t": INC + "getpid: maybe\n"},
     ["{F}:2:9: expected an argument (arg0 to arg5) or an action"]),
    ("bad-action-after-arrow", {"t": INC + "ioctl: arg1 == FIONREAD => maybe\n"},
     ["{F}:2:28: " + ACTIONS]),
    ("bad-action-after-semicolon", {"t": INC + "ioctl: arg1 == FIONREAD; deny\n"},
     ["{F}:2:26: " + ACTIONS]),
    ("missing-action-after-arrow", {"t": INC + "ioctl: arg1 == FIONREAD =>\n"},
     ["{F}:2:27: " + ACTIONS]),
    ("unknown-errno", {"t": INC + "getpid: return EFOO\n"},
     ["{F}:2:16: unknown errno 'EFOO'"]),
    ("unknown-errno-trap", {"t": INC + "getpid: trap EFOO\n"},
     ["{F}:2:14: unknown errno 'EFOO'"]),
    ("errno-zero", {"t": INC + "getpid: return 0\n"},
     ["{F}:2:16: errno '0' is not a number from 1 to 4095"]),
    ("errno-4096", {"t": INC + "getpid: return 4096\n"},
     ["{F}:2:16: errno '4096' is not a number from 1 to 4095"]),
    ("errno-missing", {"t": INC + "getpid: return\n"},
     ["{F}:2:15: expected an errno name (EPERM, EACCES...) or number"]),
    ("arg6", {"t": INC + "ioctl: arg6 == 1\n"},
     ["{F}:2:8: syscalls have six arguments, arg0 to arg5"]),
    ("missing-operator", {"t": INC + "ioctl: arg1 1\n"},
     ["{F}:2:13: expected a comparison: == != < <= > >= & in"]),
    ("unknown-constant", {"t": INC + "ioctl: arg1 == TIOCFOO\n"},
     ["{F}:2:16: unknown constant 'TIOCFOO'"]),
    ("not-a-number", {"t": INC + "ioctl: arg1 == 08\n"},
     ["{F}:2:16: '08' is not a number"]),
    ("number-overflow", {"t": INC + "lseek: arg1 == 99999999999999999999\n"},
     ["{F}:2:16: '99999999999999999999' is not a number"]),
    ("too-big-for-32-bits", {"t": INC + "ioctl: arg1 == 0x100000000\n"},
     ["{F}:2:16: value 0x100000000 does not fit arg1 of 'ioctl', which the kernel reads as 32 bits"]),
    ("too-big-for-32-bits-combined", {"t": INC + "fcntl: arg1 & 1|0x100000000\n"},
     ["{F}:2:15: value 0x100000001 does not fit arg1 of 'fcntl', which the kernel reads as 32 bits"]),
    ("self-pid-or-first", {"t": INC + "kill: arg0 == SELF_PID|1\n"},
     ["{F}:2:15: SELF_PID cannot be combined with '|'"]),
    ("self-pid-or-last", {"t": INC + "kill: arg0 == 1 | SELF_PID\n"},
     ["{F}:2:19: SELF_PID cannot be combined with '|'"]),
    ("self-pid-inverted", {"t": INC + "kill: arg0 == ~SELF_PID\n"},
     ["{F}:2:16: SELF_PID cannot be inverted"]),
    ("too-many-comparisons", {"t": INC + SIXTY_FIVE},
     ["{F}:2:%d: more than 64 comparisons in one rule" % (SIXTY_FIVE.index("arg1 != 64") + 1)]),
    ("unknown-group-near", {"t": INC + "@basic-iox: 1\n"},
     ["{F}:2:1: unknown group '@basic-iox'; did you mean '@basic-io'?"]),
    ("unknown-directive", {"t": INC + "@frobnicate\n"},
     ["{F}:2:1: unknown directive or group '@frobnicate' (see `plugbox policy groups`)"]),
    ("group-with-condition", {"t": INC + "@basic-io: arg0 == 1\n"},
     ["{F}:2:12: a group takes an action only, no conditions "
      "(rule its syscalls one by one, before the group line)"]),
    ("group-missing-colon", {"t": INC + "@time 1\n"},
     ["{F}:2:7: expected ':' after @time"]),
    ("default-allow", {"t": "@default allow\n" + INC},
     ["{F}:1:10: @default allow would let every syscall the policy does not name through; "
      "name what may pass"]),
    ("default-one", {"t": "@default 1\n" + INC},
     ["{F}:1:10: @default 1 would let every syscall the policy does not name through; "
      "name what may pass"]),
    ("default-twice", {"t": INC + "@default kill\n@default enosys\n"},
     ["{F}:3:1: a second @default (the first is at line 2)"]),
    ("default-bad", {"t": INC + "@default frob\n"},
     ["{F}:2:10: expected a default action: kill, trap, log, enosys or errno NAME"]),
    ("default-trailing", {"t": INC + "@default errno EPERM now\n"},
     ["{F}:2:22: unexpected text after the default action"]),
    ("include-missing", {"t": INC + "@include nothere\n"},
     ["{F}:2:10: cannot include 'nothere': {D}/nothere.policy: No such file or directory"]),
    ("include-cycle", {"cyca": INC + "@include cycb\n", "cycb": "@include cyca\n"},
     ["{D}/cycb.policy:1:10: include cycle: cyca -> cycb -> cyca"]),
    ("include-self", {"self": INC + "@include self\n"},
     ["{F}:2:10: include cycle: self -> self"]),
    ("include-dotdot", {"t": INC + "@include ../x\n"},
     ["{F}:2:10: " + NO_PATH + "'../x'"]),
    ("include-subdir", {"t": INC + "@include sub/x\n"},
     ["{F}:2:10: " + NO_PATH + "'sub/x'"]),
    ("include-absolute", {"t": INC + "@include /etc/passwd\n"},
     ["{F}:2:10: " + NO_PATH + "'/etc/passwd'"]),
    ("include-no-name", {"t": INC + "@include\n"},
     ["{F}:2:9: @include needs a policy name"]),
    ("include-trailing", {"t": "@include default python\n"},
     ["{F}:1:18: unexpected text after @include default"]),
    ("include-after-start", {"t": INC + "@after-start\n@include python\n"},
     ["{F}:3:1: @include must come before @after-start"]),
    ("log-after-start", {"t": INC + "@after-start\ngetpid: log\n"},
     ["{F}:3:9: log is not available after @after-start"]),
    ("log-after-start-arrow", {"t": INC + "@after-start\nioctl: arg1 == 5 => log\n"},
     ["{F}:3:21: log is not available after @after-start"]),
    ("log-after-start-otherwise", {"t": INC + "@after-start\nioctl: arg1 == 5; log\n"},
     ["{F}:3:19: log is not available after @after-start"]),
    ("log-after-start-group", {"t": INC + "@after-start\n@time: log\n"},
     ["{F}:3:8: log is not available after @after-start"]),
    ("after-start-twice", {"t": INC + "@after-start\n@after-start\n"},
     ["{F}:3:1: a second @after-start"]),
    ("after-start-trailing", {"t": INC + "@after-start now\n"},
     ["{F}:2:14: @after-start stands alone on its line"]),
    ("unreachable", {"t": INC + "lseek: 1\nlseek: arg2 == 1 => return EPERM\n"},
     ["{F}:3:1: 'lseek' is already decided without conditions at line 2; "
      "this rule would never be reached"]),
    ("unreachable-after-otherwise", {"t": INC + "fcntl: arg1 == F_GETFD; return EPERM\n"
                                     "fcntl: arg1 == F_GETFL\n"},
     ["{F}:3:1: 'fcntl' is already decided without conditions at line 2; "
      "this rule would never be reached"]),
    ("trailing-text", {"t": INC + "getpid: 1 extra\n"},
     ["{F}:2:11: unexpected 'extra'"]),
    ("trailing-after-action", {"t": INC + "ioctl: arg1 == 1 => return EPERM foo\n"},
     ["{F}:2:34: unexpected 'foo'"]),
    ("line-too-long", {"t": LINE_TOO_LONG},
     ["{F}:2:4097: line longer than 4096 bytes"]),
    ("nul-byte", {"t": b"@include default\nread: 1\x00\n"},
     ["{F}: contains a NUL byte: not a policy file"]),
    ("empty-rule", {"t": INC + "getpid:\n"},
     ["{F}:2:8: expected an action or a condition after 'getpid:'"]),
    ("empty-rule-with-comment", {"t": INC + "getpid:    # later\n"},
     ["{F}:2:8: expected an action or a condition after 'getpid:'"]),
    ("worker-floor", {"t": "@default kill\nwrite: 1\n"},
     ["{F}: " + FLOOR_MSG.format(s) for s in ("read", "rt_sigreturn", "exit_group")]),
    ("worker-floor-conditional", {"t": "read: arg0 == 0 => return EPERM\n" + INC},
     ["{F}: " + FLOOR_MSG.format("read")]),
    ("worker-floor-after-start", {"t": INC + "@after-start\nwrite: arg0 == 1 => return EPERM\n"},
     ["{F}: " + FLOOR_MSG.format("write")]),
    ("worker-floor-default-only", {"t": "@default errno EPERM\n"},
     ["{F}: " + FLOOR_MSG.format(s) for s in ("read", "write", "rt_sigreturn", "exit_group")]),
    ("several-errors-in-order", {"t": INC + "foo: 1\nread 1\ngetpid: return EBAR\n"
                                 "@basic-iox: 1\nioctl: arg1 == TIOCFOO\n"},
     ["{F}:2:1: unknown syscall 'foo'; did you mean 'fork'?",
      "{F}:3:6: expected ':' after 'read'",
      "{F}:4:16: unknown errno 'EBAR'",
      "{F}:5:1: unknown group '@basic-iox'; did you mean '@basic-io'?",
      "{F}:6:16: unknown constant 'TIOCFOO'"]),
    ("error-in-included-file", {"top": "@include sub1\n", "sub1": INC + "getpidd: 1\n"},
     ["{D}/sub1.policy:2:1: unknown syscall 'getpidd'; did you mean 'getpid'?"]),
    # the layers beside seccomp: @limit, @layer, @network, @scratch
    ("limit-unknown-near", {"t": INC + "@limit memroy 1G\n"},
     ["{F}:2:8: unknown limit 'memroy'; did you mean 'memory'?"]),
    ("limit-unknown-far", {"t": INC + "@limit bandwidth 1G\n"},
     ["{F}:2:8: unknown limit 'bandwidth' (memory, address-space, cpu, files, processes, file-size, core, call-time)"]),
    ("limit-no-name", {"t": INC + "@limit\n"},
     ["{F}:2:7: @limit needs a name: memory, address-space, cpu, files, processes, file-size, core or call-time"]),
    ("limit-no-value", {"t": INC + "@limit memory\n"},
     ["{F}:2:14: @limit memory needs a size such as 512M or 1G"]),
    ("limit-bad-size-unit", {"t": INC + "@limit memory 1X\n"},
     ["{F}:2:15: '1X' is not a size such as 512M or 1G"]),
    ("limit-fractional-size", {"t": INC + "@limit memory 1.5G\n"},
     ["{F}:2:15: '1.5G' is not a size such as 512M or 1G"]),
    ("limit-bad-time-unit", {"t": INC + "@limit cpu 5min\n"},
     ["{F}:2:12: '5min' is not a time such as 500ms, 30s or 5m"]),
    ("limit-negative-time", {"t": INC + "@limit call-time -1s\n"},
     ["{F}:2:18: '-1s' is not a time such as 500ms, 30s or 5m"]),
    ("limit-count-with-unit", {"t": INC + "@limit files 1K\n"},
     ["{F}:2:14: '1K' is not a whole number"]),
    ("limit-memory-below-minimum", {"t": INC + "@limit memory 1M\n"},
     ["{F}:2:15: @limit memory 1M is below 64M, which the worker needs to start"]),
    ("limit-files-below-minimum", {"t": INC + "@limit files 8\n"},
     ["{F}:2:14: @limit files 8 is below 16, which the worker needs to start"]),
    ("limit-processes-zero", {"t": INC + "@limit processes 0\n"},
     ["{F}:2:18: @limit processes 0 is below 1, which the worker needs to start"]),
    ("limit-files-unlimited", {"t": INC + "@limit files unlimited\n"},
     ["{F}:2:14: @limit files cannot be unlimited"]),
    ("limit-trailing", {"t": INC + "@limit cpu 5s please\n"},
     ["{F}:2:15: unexpected text after @limit cpu 5s"]),
    ("limit-twice", {"t": INC + "@limit memory 512M\n@limit cpu 5s\n@limit memory 1G\n"},
     ["{F}:4:1: a second @limit memory in this file (the first is at line 2)"]),
    ("layer-unknown", {"t": INC + "@layer seccomp off\n"},
     ["{F}:2:8: @layer names namespaces or landlock (seccomp, capabilities and limits are always on)"]),
    ("layer-bad-mode", {"t": INC + "@layer landlock maybe\n"},
     ["{F}:2:17: @layer landlock takes required, optional or off, not 'maybe'"]),
    ("layer-no-mode", {"t": INC + "@layer namespaces\n"},
     ["{F}:2:18: @layer namespaces needs required, optional or off"]),
    ("layer-trailing", {"t": INC + "@layer namespaces optional extra\n"},
     ["{F}:2:28: unexpected text after @layer namespaces optional"]),
    ("layer-twice", {"t": INC + "@layer landlock off\n@layer landlock required\n"},
     ["{F}:3:1: a second @layer landlock in this file (the first is at line 2)"]),
    ("network-bad", {"t": INC + "@network lan\n"},
     ["{F}:2:10: @network takes none, host, connect HOST:PORT or refresh TIME, not 'lan'"]),
    ("network-missing", {"t": INC + "@network\n"},
     ["{F}:2:9: @network needs none, host, connect HOST:PORT or refresh TIME"]),
    ("network-trailing", {"t": INC + "@network none now\n"},
     ["{F}:2:15: unexpected text after @network none"]),
    ("network-twice", {"t": INC + "@network none\n@network host\n"},
     ["{F}:3:1: a second @network in this file (the first is at line 2)"]),
    ("scratch-bad", {"t": INC + "@scratch 1X\n"},
     ["{F}:2:10: @scratch takes a size of at least 4K such as 64M, or none; not '1X'"]),
    ("scratch-too-small", {"t": INC + "@scratch 1K\n"},
     ["{F}:2:10: @scratch takes a size of at least 4K such as 64M, or none; not '1K'"]),
    ("scratch-missing", {"t": INC + "@scratch\n"},
     ["{F}:2:9: @scratch needs a size such as 64M, or none"]),
    ("scratch-twice", {"t": INC + "@scratch 1M\n@scratch none\n"},
     ["{F}:3:1: a second @scratch in this file (the first is at line 2)"]),
    ("scratch-inodes-bad", {"t": INC + "@scratch 1M inodes=lots\n"},
     ["{F}:2:20: @scratch inodes= takes a whole number of files of at least 16, such as inodes=4096"]),
    ("scratch-inodes-too-few", {"t": INC + "@scratch 1M inodes=8\n"},
     ["{F}:2:20: @scratch inodes= takes a whole number of files of at least 16, such as inodes=4096"]),
    ("scratch-none-inodes", {"t": INC + "@scratch none inodes=64\n"},
     ["{F}:2:15: unexpected text after @scratch none"]),
    ("scratch-unknown-option", {"t": INC + "@scratch 1M files=64\n"},
     ["{F}:2:13: unexpected text after @scratch 1M (the only option is inodes=N, the files it may hold)"]),
    ("proc-bad", {"t": INC + "@proc maybe\n"},
     ["{F}:2:7: @proc takes on or off, not 'maybe'"]),
    ("proc-twice", {"t": INC + "@proc off\n@proc on\n"},
     ["{F}:3:1: a second @proc in this file (the first is at line 2)"]),
    ("scratch-exec-bad", {"t": INC + "@scratch-exec yes\n"},
     ["{F}:2:15: @scratch-exec takes on or off, not 'yes'"]),
    ("scratch-exec-twice", {"t": INC + "@scratch-exec on\n@scratch-exec off\n"},
     ["{F}:3:1: a second @scratch-exec in this file (the first is at line 2)"]),
    ("directive-typo-proc", {"t": INC + "@prc off\n"},
     ["{F}:2:1: unknown directive '@prc'; did you mean '@proc'?"]),
    ("directive-typo-limit", {"t": INC + "@limt memory 1G\n"},
     ["{F}:2:1: unknown directive '@limt'; did you mean '@limit'?"]),
    ("directive-typo-network", {"t": INC + "@netwrok none\n"},
     ["{F}:2:1: unknown directive '@netwrok'; did you mean '@network'?"]),
    ("directive-typo-scratch", {"t": INC + "@scrach 1M\n"},
     ["{F}:2:1: unknown directive '@scrach'; did you mean '@scratch'?"]),
    ("sandbox-errors-in-order", {"t": INC + "@limit memory 1M\n@layer landlock sometimes\n"
                                 "@scratch big\n@limit cpu 5s\n@limit cpu 6s\n"},
     ["{F}:2:15: @limit memory 1M is below 64M, which the worker needs to start",
      "{F}:3:17: @layer landlock takes required, optional or off, not 'sometimes'",
      "{F}:4:10: @scratch takes a size of at least 4K such as 64M, or none; not 'big'",
      "{F}:6:1: a second @limit cpu in this file (the first is at line 5)"]),
    ("sandbox-error-in-included-file", {"top": "@include sub2\n", "sub2": INC + "@limit files 4\n"},
     ["{D}/sub2.policy:2:14: @limit files 4 is below 16, which the worker needs to start"]),
    # @host-call: the host functions a plugin may call, each by name
    ("host-call-no-name", {"t": INC + "@host-call\n"},
     ["{F}:2:11: " + HOST_NONE]),
    ("host-call-only-comment", {"t": INC + "@host-call    # add later\n"},
     ["{F}:2:11: " + HOST_NONE]),
    ("host-call-wildcard", {"t": INC + "@host-call *\n"},
     ["{F}:2:12: " + HOST_WILDCARD]),
    ("host-call-wildcard-pattern", {"t": INC + "@host-call add get_*\n"},
     ["{F}:2:16: " + HOST_WILDCARD]),
    ("host-call-digit-first", {"t": INC + "@host-call add 2fast\n"},
     ["{F}:2:16: '2fast' is not a host function name " + HOST_NAME]),
    ("host-call-dotted", {"t": INC + "@host-call os.system\n"},
     ["{F}:2:12: 'os.system' is not a host function name " + HOST_NAME]),
    ("host-call-dash", {"t": INC + "@host-call get-time\n"},
     ["{F}:2:12: 'get-time' is not a host function name " + HOST_NAME]),
    ("host-call-commas", {"t": INC + "@host-call add, recurse\n"},
     ["{F}:2:12: 'add,' is not a host function name (names are separated by blanks, not commas)"]),
    ("host-call-too-long", {"t": INC + "@host-call " + "f" * 65 + "\n"},
     ["{F}:2:12: a host function name is at most 64 bytes, not 65"]),
    ("host-call-twice", {"t": INC + "@host-call add\n@host-call recurse add\n"},
     ["{F}:3:20: a second @host-call add in this file (the first is at line 2)"]),
    ("host-call-twice-on-one-line", {"t": INC + "@host-call add add\n"},
     ["{F}:2:16: a second @host-call add in this file (the first is at line 2)"]),
    ("host-call-twice-across-after-start", {"t": INC + "@host-call add\n@after-start\n@host-call add\n"},
     ["{F}:4:12: a second @host-call add in this file (the first is at line 2)"]),
    ("host-call-every-bad-name-on-a-line", {"t": INC + "@host-call 1a ok * b.c\n"},
     ["{F}:2:12: '1a' is not a host function name " + HOST_NAME,
      "{F}:2:18: " + HOST_WILDCARD,
      "{F}:2:20: 'b.c' is not a host function name " + HOST_NAME]),
    ("host-call-error-in-included-file", {"top": "@include sub3\n", "sub3": INC + "@host-call *\n"},
     ["{D}/sub3.policy:2:12: " + HOST_WILDCARD]),
    ("directive-typo-host-calls", {"t": INC + "@host-calls add\n"},
     ["{F}:2:1: unknown directive '@host-calls'; did you mean '@host-call'?"]),
    ("directive-typo-hostcall", {"t": INC + "@hostcall add\n"},
     ["{F}:2:1: unknown directive '@hostcall'; did you mean '@host-call'?"]),
    ("directive-typo-host_call", {"t": INC + "@host_call add\n"},
     ["{F}:2:1: unknown directive '@host_call'; did you mean '@host-call'?"]),
]


def test_enough_bad_cases():
    assert len(BAD) >= 35


@pytest.mark.parametrize("files,expected", [pytest.param(f, e, id=i) for i, f, e in BAD])
def test_bad_policy(plugbox, pdir, files, expected):
    written = [write(pdir, name, content) for name, content in files.items()]
    checked = str(written[0])
    cp = plugbox.run(["policy", "check", checked])
    assert cp.returncode == EXIT_USAGE, explain(cp)
    assert cp.stdout == "", explain(cp)
    want = [line.format(F=checked, D=str(pdir)) for line in expected]
    assert cp.stderr.splitlines() == want, explain(cp)


def test_scratch_inodes_and_proc_settings_pass(plugbox, pdir):
    path = write(pdir, "t", INC + "@scratch 64M inodes=4096\n@proc off\n")
    cp = plugbox.run(["policy", "check", str(path)])
    assert cp.returncode == EXIT_OK and cp.stderr == "", explain(cp)


def test_missing_file(plugbox, scratch):
    path = str(scratch / "nothere.policy")
    cp = plugbox.run(["policy", "check", path])
    assert cp.returncode == EXIT_USAGE, explain(cp)
    assert cp.stderr == f"{path}: cannot read the policy: No such file or directory\n", explain(cp)


def test_a_fifo_or_a_directory_is_refused_without_waiting(plugbox, pdir):
    # open(2) of a FIFO waits for a writer and read(2) of a device may
    # never end: a policy, an included one or one named by `show` that is
    # not a regular file is refused at once, naming it (timeout 10 s: a
    # supervisor that waited would be killed and the test fail).
    os.mkfifo(pdir / "fifo.policy")
    (pdir / "dir.policy").mkdir()
    including = write(pdir, "including", "@include fifo\n" + INC)
    for path, said in ((pdir / "fifo.policy", f"{pdir}/fifo.policy: cannot read the policy: not a regular file"),
                       (pdir / "dir.policy", f"{pdir}/dir.policy: cannot read the policy: not a regular file"),
                       (including, f"{including}:1:10: cannot include 'fifo': {pdir}/fifo.policy: "
                                   "not a regular file")):
        cp = plugbox.run(["policy", "check", str(path)], timeout=10)
        assert cp.returncode == EXIT_USAGE, explain(cp)
        assert cp.stderr == said + "\n", explain(cp)
    cp = plugbox.run(["policy", "show", "--policies", str(pdir), "fifo"], timeout=10)
    assert cp.returncode == EXIT_USAGE, explain(cp)
    assert cp.stderr == f"{pdir}/fifo.policy: cannot read the policy: not a regular file\n", explain(cp)


def test_good_file_ok(plugbox, pdir):
    path = str(write(pdir, "good", "ioctl: arg1 == FIONREAD => return EPERM\n"
                                   "socket: arg0 == AF_UNIX && arg1 in SOCK_STREAM|SOCK_CLOEXEC; "
                                   "trap EACCES\n"
                                   "lseek: arg1 >= 0x100000000 || arg2 != 0 => return EINVAL\n"
                                   "openat: arg2 in ~O_CREAT => allow\n"
                                   "fcntl: arg1 in ~0x80000000 => allow\n"
                                   "@time: return EPERM\n" + INC +
                                   "@after-start\nopenat: return EACCES\n"))
    cp = plugbox.run(["policy", "check", path])
    assert (cp.returncode, cp.stdout, cp.stderr) == (EXIT_OK, f"{path}: ok\n", ""), explain(cp)


def test_good_and_bad_files_together(plugbox, pdir):
    good = str(write(pdir, "good", FLOOR))
    bad = str(write(pdir, "bad", FLOOR + "getpid: nope\n"))
    cp = plugbox.run(["policy", "check", good, bad, good])
    assert cp.returncode == EXIT_USAGE, explain(cp)
    assert cp.stdout == f"{good}: ok\n{good}: ok\n", explain(cp)
    assert cp.stderr == f"{bad}:5:9: expected an argument (arg0 to arg5) or an action\n", explain(cp)


def test_relative_path_as_passed(plugbox, pdir):
    write(pdir, "rel", INC + "getpidd: 1\n")
    cp = subprocess.run([plugbox.exe, "policy", "check", "rel.policy"], cwd=pdir, env=plugbox.env,
                        text=True, capture_output=True, timeout=60)
    assert cp.returncode == EXIT_USAGE, explain(cp)
    assert cp.stderr == "rel.policy:2:1: unknown syscall 'getpidd'; did you mean 'getpid'?\n", \
        explain(cp)


def test_warnings_do_not_fail(plugbox, pdir):
    path = str(write(pdir, "warn", "ptrace: 1\nioctl: 1\nclone: allow\nsocket: log\n"
                                   "getpid: arg0 == 1\n" + INC))
    cp = plugbox.run(["policy", "check", path])
    assert cp.returncode == EXIT_OK, explain(cp)
    assert cp.stdout == f"{path}: ok\n", explain(cp)
    assert cp.stderr.splitlines() == [
        f"{path}:1:1: warning: 'ptrace' is allowed without conditions: it reads and writes "
        "other processes",
        f"{path}:2:1: warning: 'ioctl' is allowed without conditions: it reaches every driver "
        "(TIOCSTI types into the terminal)",
        f"{path}:3:1: warning: 'clone' is allowed without conditions: it makes processes and "
        "namespaces (allow CLONE_THREAD only)",
        f"{path}:4:1: warning: 'socket' is allowed without conditions: it opens any family: "
        "netlink, packet, raw",
        f"{path}:5:9: warning: plugbox does not know how the kernel reads the arguments of "
        "'getpid'; arg0 is compared as a 64-bit value",
    ], explain(cp)


def test_no_warning_once_arguments_are_ruled(plugbox, pdir):
    # An unconditional allow after rules on the arguments is what the lint
    # asks for; a dangerous syscall that is denied is no warning either.
    path = str(write(pdir, "ruled", "ioctl: arg1 == TIOCSTI => kill\nioctl: 1\nptrace: kill\n"
                                    "clone: arg0 & CLONE_NEWUSER => kill; allow\n" + INC))
    cp = plugbox.run(["policy", "check", path])
    assert (cp.returncode, cp.stdout, cp.stderr) == (EXIT_OK, f"{path}: ok\n", ""), explain(cp)


def test_error_and_warning_together(plugbox, pdir):
    path = str(write(pdir, "mixed", "ptrace: 1\ngetpid: kil\n" + INC))
    cp = plugbox.run(["policy", "check", path])
    assert cp.returncode == EXIT_USAGE, explain(cp)
    assert cp.stderr.splitlines() == [
        f"{path}:1:1: warning: 'ptrace' is allowed without conditions: it reads and writes "
        "other processes",
        f"{path}:2:9: expected an argument (arg0 to arg5) or an action",
    ], explain(cp)


def test_shipped_policies_pass_without_warnings(plugbox, paths):
    policies = sorted(shipped_dir(paths).glob("*.policy"))
    assert {p.stem for p in policies} >= {"python", "default", "network-client", "strict"}
    for path in policies:
        cp = plugbox.run(["policy", "check", str(path)])
        assert (cp.returncode, cp.stdout, cp.stderr) == (EXIT_OK, f"{path}: ok\n", ""), explain(cp)


RULE = re.compile(r"^  (\S+) +(\S+\.policy:\d+) +(.*)$")
COMPILED = re.compile(r"^compiled: (\d) programs, \d+ bytes: guard (\d+), start-up (\d+), "
                      r"after start-up (\d+) instructions(; log rules use a seccomp listener)?$")


def show_rules(stdout):
    """The rule lines of `policy show`: (syscall, where, text), in order."""
    return [m.groups() for m in map(RULE.match, stdout.splitlines()) if m]


def test_include_overrides_in_order(plugbox, pdir):
    path = str(write(pdir, "top", "ioctl: arg1 == FIONREAD => return EPERM\n@include default\n"))
    cp = plugbox.run(["policy", "show", path])
    assert cp.returncode == EXIT_OK, explain(cp)
    lines = cp.stdout.splitlines()
    assert lines[0] == f"policy top ({path})"
    assert lines[1] == "includes: default python"
    py = pdir / "python.policy"
    assert lines[2] == f"@default trap ENOSYS (python.policy:{line_of(py, '@default trap ENOSYS')})"
    ioctl = [(where, text) for name, where, text in show_rules(cp.stdout) if name == "ioctl"]
    assert ioctl[0] == ("top.policy:1", "ioctl: arg1 == FIONREAD => return EPERM"), explain(cp)
    kill_line = line_of(py, "ioctl: arg1 == TIOCSTI")
    enotty_line = line_of(py, "ioctl: arg1 == TCGETS")
    assert [w for w, _ in ioctl[1:]] == [f"python.policy:{kill_line}"] + \
        [f"python.policy:{enotty_line}"] * 2, explain(cp)
    # The including file decides first: the included default follows.
    rules = show_rules(cp.stdout)
    assert rules[0][1] == "top.policy:1" and all(w.startswith("python.policy:") for _, w, _ in rules[1:])


def show_layers(stdout):
    """The lines of `policy show` under 'layers:', without their indent."""
    lines = stdout.splitlines()
    start = lines.index("layers:") + 1
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("  @"))
    return [line[2:] for line in lines[start:end]]


def test_include_overrides_sandbox_settings(plugbox, pdir):
    # The including file's settings win, whatever the order of its lines;
    # the same @limit in two files is no error; what neither file sets
    # comes from default.policy.
    write(pdir, "mid", "@limit memory 2G\n@limit cpu 5s\n@network host\n@include default\n")
    path = str(write(pdir, "top", "@include mid\n@limit memory 512M\n@layer landlock required\n"))
    cp = plugbox.run(["policy", "check", path])
    assert (cp.returncode, cp.stderr) == (EXIT_OK, ""), explain(cp)
    cp = plugbox.run(["policy", "show", path])
    assert cp.returncode == EXIT_OK, explain(cp)
    d = pdir / "default.policy"
    shown = show_layers(cp.stdout)
    assert "@limit memory 512M (top.policy:2)" in shown, explain(cp)
    assert "@layer landlock required (top.policy:3)" in shown, explain(cp)
    assert "@limit cpu 5s (mid.policy:2)" in shown, explain(cp)
    assert "@network host (mid.policy:3)" in shown, explain(cp)
    assert f"@limit files 256 (default.policy:{line_of(d, '@limit files')})" in shown, explain(cp)
    assert f"@layer namespaces required (default.policy:{line_of(d, '@layer namespaces')})" in shown
    # Shown for mid alone, its own value stands.
    cp = plugbox.run(["policy", "show", "--policies", pdir, "mid"])
    assert "@limit memory 2G (mid.policy:1)" in show_layers(cp.stdout), explain(cp)


def show_host_calls(stdout):
    """The 'host calls:' line of `policy show`, which follows the layers."""
    lines = stdout.splitlines()
    at = lines.index("layers:") + 1 + len(show_layers(stdout))
    assert lines[at].startswith("host calls:"), lines
    return lines[at]


def test_host_calls_add_up_across_includes(plugbox, pdir):
    # Grants add up: the including file's first, then each included file's;
    # a name both grant keeps the including file's place (no error). They
    # may stand anywhere, also after @after-start.
    write(pdir, "lib", "@host-call log_line add\n@include default\n")
    path = str(write(pdir, "top", "@host-call recurse _private\n@include lib\n"
                                  "@after-start\n@host-call\tadd   Add  # case matters\n"))
    cp = plugbox.run(["policy", "check", path])
    assert (cp.returncode, cp.stdout, cp.stderr) == (EXIT_OK, f"{path}: ok\n", ""), explain(cp)
    cp = plugbox.run(["policy", "show", path])
    assert cp.returncode == EXIT_OK, explain(cp)
    assert show_host_calls(cp.stdout) == (
        "host calls: recurse (top.policy:1), _private (top.policy:1), add (top.policy:4), "
        "Add (top.policy:4), log_line (lib.policy:1)"), explain(cp)
    cp = plugbox.run(["policy", "show", "--policies", pdir, "lib"])
    assert show_host_calls(cp.stdout) == "host calls: log_line (lib.policy:1), add (lib.policy:1)", \
        explain(cp)


def test_shipped_policies_grant_no_host_calls(plugbox, paths):
    for name in ("default", "python", "strict", "network-client"):
        cp = plugbox.run(["policy", "show", name])
        assert cp.returncode == EXIT_OK, explain(cp)
        assert show_host_calls(cp.stdout) == "host calls: none", explain(cp)
    # default.policy shows how a plugin's own policy would grant some
    assert line_of(shipped_dir(paths) / "default.policy", "# @host-call NAME")


def test_show_default(plugbox, paths):
    cp = plugbox.run(["policy", "show", "default"])
    assert cp.returncode == EXIT_OK, explain(cp)
    py = shipped_dir(paths) / "python.policy"
    lines = cp.stdout.splitlines()
    assert lines[0] == f"policy default ({shipped_dir(paths)}/default.policy)"
    assert lines[1] == "includes: python"
    rules = show_rules(cp.stdout)
    assert len(rules) > 150
    assert ("read", f"python.policy:{line_of(py, 'read: 1')}", "read: 1") in rules
    assert ("ptrace", f"python.policy:{line_of(py, '@attack: kill')}", "@attack: kill") in rules
    assert ("openat", f"python.policy:{line_of(py, 'openat:')}") == rules[
        [r[0] for r in rules].index("openat")][:2]
    assert "after start-up rules, added once the plugin is imported:" in lines
    assert lines[lines.index("after start-up rules, added once the plugin is imported:") + 1] == \
        "  (none)"
    m = COMPILED.match(lines[-1])
    assert m and m.group(1) == "2" and int(m.group(3)) > 100 and m.group(4) == "0", lines[-1]


def test_show_strict_has_after_start_rules(plugbox):
    cp = plugbox.run(["policy", "show", "strict"])
    assert cp.returncode == EXIT_OK, explain(cp)
    lines = cp.stdout.splitlines()
    after = lines[lines.index("after start-up rules, added once the plugin is imported:") + 1:-1]
    assert [RULE.match(line).group(1) for line in after] == ["open", "openat", "openat2"]
    m = COMPILED.match(lines[-1])
    assert m and m.group(1) == "3" and int(m.group(4)) > 0, lines[-1]


def test_show_with_policies_dir(plugbox, pdir):
    write(pdir, "mine", "getppid: return EPERM\n" + INC)
    cp = plugbox.run(["policy", "show", "--policies", pdir, "mine"])
    assert cp.returncode == EXIT_OK, explain(cp)
    assert show_rules(cp.stdout)[0] == ("getppid", "mine.policy:1", "getppid: return EPERM")


def test_show_log_uses_a_listener(plugbox, pdir):
    path = str(write(pdir, "logs", "uname: log\n" + INC))
    cp = plugbox.run(["policy", "show", path])
    assert cp.returncode == EXIT_OK, explain(cp)
    assert cp.stdout.splitlines()[-1].endswith("; log rules use a seccomp listener"), explain(cp)


def test_show_bad_names(plugbox, pdir):
    # A NAME must be [A-Za-z0-9_-]+; anything with a '/' is a file path.
    cp = plugbox.run(["policy", "show", "--policies", pdir, "a b"])
    assert cp.returncode == EXIT_USAGE, explain(cp)
    assert cp.stderr == f"{pdir}: policy name 'a b' has characters outside [A-Za-z0-9_-]\n", \
        explain(cp)
    cp = plugbox.run(["policy", "show", "--policies", pdir, "nothere"])
    assert cp.returncode == EXIT_USAGE, explain(cp)
    assert cp.stderr == f"{pdir}/nothere.policy: cannot read the policy: No such file or directory\n", \
        explain(cp)
    sub = pdir / "sub"
    sub.mkdir()
    cp = subprocess.run([plugbox.exe, "policy", "show", "--policies", str(pdir), "../x"], cwd=sub,
                        env=plugbox.env, text=True, capture_output=True, timeout=60)
    assert cp.returncode == EXIT_USAGE, explain(cp)
    assert cp.stdout == "", explain(cp)
    assert cp.stderr == "../x: cannot read the policy: No such file or directory\n", explain(cp)


def test_show_refuses_a_bad_policy(plugbox, pdir):
    path = str(write(pdir, "bad", INC + "getpid: return EFOO\n"))
    cp = plugbox.run(["policy", "show", path])
    assert cp.returncode == EXIT_USAGE, explain(cp)
    assert cp.stdout == ""
    assert cp.stderr == f"{path}:2:16: unknown errno 'EFOO'\n", explain(cp)


def test_groups(plugbox):
    cp = plugbox.run(["policy", "groups"])
    assert cp.returncode == EXIT_OK, explain(cp)
    groups, current = {}, None
    for line in cp.stdout.splitlines():
        if line.startswith("@"):
            current = line.split(":", 1)[0][1:]
            groups[current] = []
        else:
            assert line.startswith("    ") and current, line
            groups[current] += line.split()
    assert groups["python-runtime"] == ["@basic-io", "@file-read", "@memory", "@threads", "@time",
                                        "@identity", "@signals", "@event-loop"]
    for name in ("basic-io", "file-read", "memory", "threads", "time", "identity", "signals",
                 "event-loop", "network-client", "process", "debug", "mount", "io-uring"):
        assert name in groups, name
    assert {"read", "write", "close"} <= set(groups["basic-io"])
    assert "ptrace" in groups["debug"]
    assert "rt_sigreturn" in groups["signals"]
    assert all(groups.values())


def test_groups_takes_no_arguments(plugbox):
    cp = plugbox.run(["policy", "groups", "extra"])
    assert cp.returncode == EXIT_USAGE, explain(cp)
