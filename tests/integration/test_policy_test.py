"""`plugbox policy test POLICY EXPECT_FILE...` (issue 24): expectation rows
run through the compiled filter by plugbox's own BPF interpreter, no plugin
started. Mismatches are FILE:LINE lines and exit 1; a bad row is a
FILE:LINE:COL error with a hint and exit 2; --junit and --tap report one
case per row."""

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pbtest import EXIT_OK, EXIT_USAGE, explain
# the policy language's tests: the shipped policies, copies to include, line numbers
from test_policy_lang import line_of, pdir, shipped_dir  # noqa: F401 (pdir is a fixture)

SHIPPED = ("default", "python", "network-client", "strict", "install", "compile")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_policies_meet_the_kill_list(plugbox, paths, name):
    kill_list = shipped_dir(paths) / "kill-list.expect"
    cp = plugbox.run(["policy", "test", "--policies", shipped_dir(paths), name, kill_list])
    assert cp.returncode == EXIT_OK, explain(cp)
    # Every @attack member is a case of its own: dozens, not one line.
    n = int(cp.stdout.split(": ")[1].split()[0])
    assert n >= 50 and f"{n} met, 0 not" in cp.stdout, cp.stdout


def test_a_policy_that_allows_ptrace_fails_at_the_exact_line(plugbox, paths, pdir):
    (pdir / "broken.policy").write_text("# lets ptrace through\nptrace: 1\n@include default\n")
    kill_list = shipped_dir(paths) / "kill-list.expect"
    mine = pdir / "mine.expect"
    mine.write_text("read allow\n\n   ptrace(16, 1)  kill  # PTRACE_ATTACH\n")
    cp = plugbox.run(["policy", "test", pdir / "broken.policy", kill_list, mine])
    assert cp.returncode == 1, explain(cp)
    attack = line_of(kill_list, "@attack")
    lines = [l for l in cp.stdout.splitlines() if ": expected " in l]
    assert lines == [
        f"{kill_list}:{attack}: @attack: ptrace: expected kill, the compiled filter says allow for "
        f"ptrace(0, 0, 0, 0, 0, 0), decided by rule 'ptrace: 1' at broken.policy:2",
        f"{mine}:3: ptrace: expected kill, the compiled filter says allow for "
        f"ptrace(0x10, 0x1, 0, 0, 0, 0), decided by rule 'ptrace: 1' at broken.policy:2",
    ], cp.stdout
    assert "2 not" in cp.stdout.splitlines()[-1]
    # The same policy without the broken line passes: the failure was ptrace's.
    (pdir / "broken.policy").write_text("@include default\n")
    cp = plugbox.run(["policy", "test", pdir / "broken.policy", kill_list, mine])
    assert cp.returncode == EXIT_OK, explain(cp)


def test_other_entry_points_are_their_own_calls(plugbox, pdir):
    """i386 and x32 rows reach the filter with their ABI's arch and number:
    read is allowed natively and killed through either of the others."""
    rows = pdir / "abi.expect"
    rows.write_text("read allow\nx86_64:read allow\ni386:read allow\nx32:read allow\n"
                    "i386:read kill\nx32:read kill\n")
    cp = plugbox.run(["policy", "test", pdir / "default.policy", rows])
    assert cp.returncode == 1, explain(cp)
    bad = [l for l in cp.stdout.splitlines() if ": expected " in l]
    assert [l.split(": expected")[0] for l in bad] == [f"{rows}:3: i386:read", f"{rows}:4: x32:read"]
    assert "read(0, 0, 0, 0, 0, 0) via the i386 ABI" in bad[0]
    assert "via the x32 ABI" in bad[1] and "the built-in guard" in bad[1]


def test_the_upper_half_of_an_argument(plugbox, pdir):
    """A 32-bit argument is judged on the half the kernel reads; a 64-bit
    one on all of it."""
    (pdir / "wide.policy").write_text(
        "mmap: arg0 == 0 => return EPERM; allow\n"       # addr: 64 bits
        "kill: arg1 == SIGTERM; return EPERM\n"          # sig: an int
        "@include default\n")
    rows = pdir / "wide.expect"
    rows.write_text("mmap(0) errno EPERM\n"
                    "mmap(0x100000000) allow\n"
                    "kill(0, SIGTERM) allow\n"
                    "kill(0, 0xdeadbeef00000000|SIGTERM) allow\n"
                    "kill(0, SIGKILL) errno EPERM\n"
                    "mmap(0x100000000) errno EPERM\n")
    cp = plugbox.run(["policy", "test", pdir / "wide.policy", rows])
    assert cp.returncode == 1, explain(cp)
    bad = [l for l in cp.stdout.splitlines() if ": expected " in l]
    assert len(bad) == 1 and bad[0].startswith(f"{rows}:6: mmap: expected errno EPERM, the compiled "
                                               "filter says allow for mmap(0x100000000,"), cp.stdout


@pytest.mark.parametrize("row,col,message", [
    ("ptrac kill", 1, "unknown syscall 'ptrac'; did you mean 'ptrace'?"),
    ("ptrace maybe", 8, "unknown outcome 'maybe'; expected an outcome: allow, kill, log, "
                        "trap [ERRNO] or errno ERRNO"),
    ("ptrace", 7, "expected an outcome: allow, kill, log, trap [ERRNO] or errno ERRNO"),
    ("socket(AF_INETT) allow", 8, "unknown constant 'AF_INETT'"),
    ("socket(AF_INET allow", 16, "expected ',' or ')' after argument 0"),
    ("sparc:read kill", 1, "unknown ABI 'sparc'; this machine's are x86_64, x32 or i386"),
    ("i386:newfstatat kill", 6, "the i386 ABI has no syscall 'newfstatat'"),
    ("read errno EWHAT", 12, "unknown errno 'EWHAT'"),
    ("@atack kill", 1, "unknown group '@atack'; did you mean '@attack'?"),
    ("@attack(1) kill", 8, "a @group row takes no arguments: write one row per syscall"),
    ("read allow now", 12, "unexpected text after the outcome (a comment starts with '#')"),
    ("read(1,2,3,4,5,6,7) allow", 18, "syscalls have six arguments at most"),
])
def test_a_bad_row_is_an_error_with_its_place(plugbox, pdir, row, col, message):
    if "x86_64" not in os.uname().machine and ("i386" in row or "sparc" in row):
        pytest.skip("the ABI names are x86_64's")
    rows = pdir / "bad.expect"
    rows.write_text(f"read allow\n# a comment\n{row}\n")
    cp = plugbox.run(["policy", "test", pdir / "default.policy", rows])
    assert cp.returncode == EXIT_USAGE, explain(cp)
    assert cp.stderr.splitlines() == [f"{rows}:3:{col}: {message}"], cp.stderr
    assert cp.stdout == ""   # nothing is judged from a file that did not read


def test_junit_and_tap(plugbox, pdir):
    """One case per row (a group: per member), failures counted, the
    evidence in the failure; the XML parses; TAP has its plan."""
    (pdir / "odd&<name>.policy").write_text("ptrace: 1\n@include default\n")
    rows = pdir / "r.expect"
    rows.write_text("@debug kill\nread allow\nsocket(AF_INET) trap\nsocket(AF_INET) trap EPERM\n")
    report = pdir / "out.xml"
    cp = plugbox.run(["policy", "test", "--junit", report, pdir / "odd&<name>.policy", rows])
    assert cp.returncode == 1, explain(cp)
    root = ET.parse(report).getroot()
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    names = [c.get("name") for c in cases]
    assert f"{rows}:1: @debug: ptrace" in names and f"{rows}:2: read" in names
    assert len(cases) == int(suite.get("tests")) == int(root.get("tests")) >= 5
    failed = {c.get("name"): c.find("failure") for c in cases if c.find("failure") is not None}
    assert set(failed) == {f"{rows}:1: @debug: ptrace", f"{rows}:4: socket"}
    assert suite.get("failures") == root.get("failures") == "2"
    assert {c.get("classname") for c in cases} == {"odd&<name>"}
    ptrace = failed[f"{rows}:1: @debug: ptrace"]
    assert "decided by rule 'ptrace: 1' at odd&<name>.policy:1" in ptrace.get("message")
    assert "expected trap EPERM, the compiled filter says trap EACCES" in failed[f"{rows}:4: socket"].get("message")

    cp = plugbox.run(["policy", "test", "--tap", pdir / "odd&<name>.policy", rows])
    assert cp.returncode == 1, explain(cp)
    lines = cp.stdout.splitlines()
    assert lines[0] == "TAP version 13" and lines[1] == f"1..{len(cases)}"
    oks = [l for l in lines if l.startswith(("ok ", "not ok "))]
    assert len(oks) == len(cases)
    assert [l for l in oks if l.startswith("not ok")] == [
        f"not ok 1 - {rows}:1: @debug: ptrace", f"not ok {len(cases)} - {rows}:4: socket"]


def test_start_up_judges_without_the_after_start_rules(plugbox, paths, scratch):
    """strict.policy refuses openat once the plugin is imported: rows are
    judged as the plugin runs, --start-up as its imports do."""
    rows = scratch / "strict-startup.expect"
    rows.write_text("openat(AT_FDCWD, 0, O_RDONLY) errno EACCES\n")
    cp = plugbox.run(["policy", "test", "--policies", shipped_dir(paths), "strict", rows])
    assert cp.returncode == EXIT_OK, explain(cp)
    cp = plugbox.run(["policy", "test", "--start-up", "--policies", shipped_dir(paths), "strict", rows])
    assert cp.returncode == 1, explain(cp)
    assert "expected errno EACCES, the compiled filter says allow" in cp.stdout


# ---- policy explain ----------------------------------------------------------

def test_explain_names_the_rule_its_line_and_the_includes(plugbox, pdir):
    (pdir / "mid.policy").write_text("# mid\nbind: return EACCES\n\n@include default\n")
    (pdir / "top.policy").write_text("getpid: 1\n@include mid\n")
    cp = plugbox.run(["policy", "explain", pdir / "top.policy", "ptrace"])
    assert cp.returncode == EXIT_OK, explain(cp)
    python_line = line_of(pdir / "python.policy", "@attack: kill")
    default_line = line_of(pdir / "default.policy", "@include python")
    assert cp.stdout.splitlines()[1:] == [
        "verdict: kill",
        "  decided by rule '@attack: kill'",
        f"    at python.policy:{python_line}",
        f"    through the @include at default.policy:{default_line}",
        "    through the @include at mid.policy:4",
        "    through the @include at top.policy:2",
    ], cp.stdout
    # Arguments, separate or in parentheses, reach the conditions.
    for args in (["socket", "AF_INET", "SOCK_STREAM"], ["socket(AF_INET, SOCK_STREAM)"]):
        cp = plugbox.run(["policy", "explain", pdir / "top.policy", *args])
        assert cp.returncode == EXIT_OK, explain(cp)
        assert cp.stdout.splitlines()[0].endswith("syscall socket(0x2, 0x1, 0, 0, 0, 0)")
        assert cp.stdout.splitlines()[1:3] == ["verdict: trap EACCES", "  decided by rule 'socket: trap EACCES'"]
    cp = plugbox.run(["policy", "explain", pdir / "top.policy", "bind"])
    assert cp.stdout.splitlines()[1:] == ["verdict: errno EACCES", "  decided by rule 'bind: return EACCES'",
                                          "    at mid.policy:2", "    through the @include at top.policy:2"]
    cp = plugbox.run(["policy", "explain", pdir / "top.policy", "timer_create"])
    assert cp.stdout.splitlines()[1:3] == [
        "verdict: trap ENOSYS", "  decided by the @default (no rule names this call with these arguments)"]


def test_explain_other_entry_points_and_errors(plugbox, pdir):
    if os.uname().machine != "x86_64":
        pytest.skip("x86_64's ABIs")
    cp = plugbox.run(["policy", "explain", pdir / "default.policy", "i386:read"])
    assert cp.returncode == EXIT_OK, explain(cp)
    assert cp.stdout.splitlines()[1:] == [
        "verdict: kill", "  decided by the built-in guard, which kills every call through the i386 entry point"]
    cp = plugbox.run(["policy", "explain", pdir / "default.policy", "ptrac"])
    assert cp.returncode == EXIT_USAGE
    assert cp.stderr.splitlines() == ["command line:1:1: unknown syscall 'ptrac'; did you mean 'ptrace'?"]


def test_explain_both_phases_of_an_after_start_policy(plugbox, paths):
    cp = plugbox.run(["policy", "explain", "--policies", shipped_dir(paths), "strict",
                      "openat", "AT_FDCWD", "0", "O_RDONLY"])
    assert cp.returncode == EXIT_OK, explain(cp)
    out = cp.stdout.splitlines()
    assert "while the plugin is imported: allow" in out
    i = out.index("once the plugin is started: errno EACCES")
    assert out[i + 1] == "  decided by rule 'openat: return EACCES'"
    assert out[i + 2] == f"    at strict.policy:{line_of(shipped_dir(paths) / 'strict.policy', 'openat:')}"


def test_junit_escapes_what_xml_cannot_hold(plugbox, pdir):
    """A control character and a byte that is not UTF-8 in a policy's name:
    the report still parses, with them as \\xNN text."""
    odd = os.fsencode(pdir) + b"/a\x01b\xff.policy"
    with open(odd, "wb") as f:
        f.write(b"ptrace: 1\n@include default\n")
    rows = pdir / "r.expect"
    rows.write_text("ptrace kill\n")
    report = pdir / "odd.xml"
    cp = plugbox.run(["policy", "test", "--junit", report, os.fsdecode(odd), rows])
    assert cp.returncode == 1, explain(cp)
    raw = report.read_bytes()
    assert b"\x01" not in raw and b"\xff" not in raw
    case = ET.fromstring(raw).find("testsuite").find("testcase")
    assert case.get("classname") == "a\\x01b\\xff"
    assert "at a\\x01b\\xff.policy:1" in case.find("failure").get("message")
