"""`plugbox selftest` for CI (issue 24): the operator's own probes beside
(--probes DIR) or instead of (--only-probes) the built-in battery, judged by
the same runner, and the JUnit and TAP reports, whose every string a probe
may have chosen."""

import os
import re
import shutil
import xml.etree.ElementTree as ET

from pbtest import explain
from test_selftest import FAKE_PROBES, LINE, kit, run_selftest  # noqa: F401 (kit is a fixture)

NASTY = "<b>&amp;\"quoted\" 'it' ]]> \x1b[31mred\x07 \u2028 \ufffe \U0001f600 tab\there"

OPERATOR = {
    # the operator's own attempt: reading a host file (the runner's secret)
    "srv_data": 'import errno\nimport plugbox\n\n@plugbox.export\ndef attack(ctx):\n'
                '    try:\n        open(ctx["secret"]).read()\n'
                '    except OSError as e:\n'
                '        return {"contained": True, "how": "open(secret) -> " + errno.errorcode[e.errno]}\n'
                '    return {"contained": False, "how": "read the secret"}\n',
    # a breach, told in markup and control characters
    "nasty": 'import plugbox\n\n@plugbox.export\ndef attack(ctx):\n'
             f'    return {{"contained": False, "how": {NASTY!r}}}\n',
    # says contained while connecting to the runner's listener
    "liar": 'import socket\nimport plugbox\n\n@plugbox.export\ndef attack(ctx):\n'
            '    try:\n        socket.create_connection(("127.0.0.1", ctx["tcp_port"]), timeout=2).close()\n'
            '    except OSError:\n        pass\n'
            '    return {"contained": True, "how": "nothing to see"}\n',
}
ROWS = [("srv_data", "filesystem", "result", "read a file the operator keeps from plugins"),
        ("nasty", "tty", "result", "say something <odd> & loud"),
        ("liar", "network", "result", "claim containment while connecting")]


def setup_dirs(kit, tag):
    base = kit.probes(f"{tag}-base", [("read_secret", "filesystem", "result", "read a host file"),
                                      ("holds", "tty", "result", "hold")], FAKE_PROBES)
    mine = kit.probes(f"{tag}-mine", ROWS, OPERATOR)
    policies = kit.root / f"{tag}-policies"
    shutil.copytree(kit.policies, policies)
    (policies / "liar.policy").write_text("@include network-client\n")
    os.chmod(policies / "liar.policy", 0o644)
    return base, mine, policies


def test_operator_probes_beside_and_instead_of_the_battery(kit):
    base, mine, policies = setup_dirs(kit, "beside")
    cp = run_selftest(kit, ["--policies", str(policies), "--probes", str(mine)], PLUGBOX_SELFTEST=str(base))
    assert cp.returncode == 1, explain(cp)
    got = {m["name"]: m for m in map(LINE.match, cp.stdout.splitlines()) if m}
    assert list(got) == ["read_secret", "holds", "srv_data", "nasty", "liar"], explain(cp)
    assert {n: m["status"] for n, m in got.items()} == {
        "read_secret": "contained", "holds": "contained", "srv_data": "contained",
        "nasty": "NOT CONTAINED", "liar": "NOT CONTAINED"}, explain(cp)
    assert re.fullmatch(r"read a file the operator keeps from plugins: open\(secret\) -> E[A-Z]+",
                        got["srv_data"]["how"]), explain(cp)
    # The runner's evidence overrules the probe's word, as for built-in probes.
    assert got["liar"]["how"].endswith("[runner: the TCP listener accepted a connection]"), explain(cp)
    # Control characters never reach the terminal.
    assert "\x1b" not in cp.stdout and "\x07" not in cp.stdout
    assert cp.stdout.splitlines()[-1] == "5 probes: 3 contained, 2 NOT CONTAINED", explain(cp)

    cp = run_selftest(kit, ["--policies", str(policies), "--probes", str(mine), "--only-probes"],
                      PLUGBOX_SELFTEST=str(base))
    got = [m["name"] for m in map(LINE.match, cp.stdout.splitlines()) if m]
    assert cp.returncode == 1 and got == ["srv_data", "nasty", "liar"], explain(cp)


def test_junit_and_tap_reports(kit):
    base, mine, policies = setup_dirs(kit, "reports")
    report = kit.root / "reports-junit.xml"
    cp = run_selftest(kit, ["--policies", str(policies), "--probes", str(mine), "--junit", str(report)],
                      PLUGBOX_SELFTEST=str(base))
    assert cp.returncode == 1, explain(cp)
    raw = report.read_bytes()
    assert not re.search(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", raw), raw
    root = ET.fromstring(raw)
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("selftest.filesystem", "read_secret"), ("selftest.tty", "holds"),
        ("probes.filesystem", "srv_data"), ("probes.tty", "nasty"), ("probes.network", "liar")]
    assert (suite.get("tests"), suite.get("failures"), root.get("failures")) == ("5", "2", "2")
    failures = {c.get("name"): c.find("failure") for c in cases if c.find("failure") is not None}
    assert set(failures) == {"nasty", "liar"}
    nasty = failures["nasty"]
    # Markup came through as text, control characters as \xNN, the rest as is.
    assert nasty.get("message").startswith("NOT CONTAINED: say something <odd> & loud: <b>&amp;\"quoted\" 'it' ]]>")
    # the runner passes a probe's answer through plugbox's one sanitiser:
    # controls as \xNN, U+2028 as \u{2028}; U+FFFE is no XML character, so
    # the report writes its bytes as text; an emoji stays as it is
    assert " \\x1b[31mred\\x07 \\u{2028} " in nasty.get("message")
    assert "\\xef\\xbf\\xbe" in nasty.get("message")
    assert "\U0001f600" in nasty.get("message")
    assert "sibling: answered, same process" in nasty.text
    assert "[runner: the TCP listener accepted a connection]" in failures["liar"].get("message")
    passed = [c for c in cases if c.find("failure") is None]
    assert all("attempt: " in c.find("system-out").text for c in passed)

    cp = run_selftest(kit, ["--policies", str(policies), "--probes", str(mine), "--tap"],
                      PLUGBOX_SELFTEST=str(base))
    assert cp.returncode == 1, explain(cp)
    lines = cp.stdout.splitlines()
    assert lines[:2] == ["TAP version 13", "1..5"], explain(cp)
    assert [l for l in lines if re.match(r"(not )?ok \d", l)] == [
        "ok 1 - read_secret", "ok 2 - holds", "ok 3 - srv_data", "not ok 4 - nasty", "not ok 5 - liar"]
    assert "\x1b" not in cp.stdout and "\x07" not in cp.stdout


def test_operator_manifest_errors(kit):
    base, mine, policies = setup_dirs(kit, "errors")
    (mine / "probes.txt").write_text("srv_data filesystem result fine\nmissing  network result gone\n")
    cp = run_selftest(kit, ["--probes", str(mine)], PLUGBOX_SELFTEST=str(base))
    assert cp.returncode == 2 and cp.stdout == "", explain(cp)
    assert f"{mine}/probes.txt:2: no such probe" in cp.stderr, explain(cp)
    cp = run_selftest(kit, ["--only-probes"], PLUGBOX_SELFTEST=str(base))
    assert cp.returncode == 2 and "--only-probes needs --probes DIR" in cp.stderr, explain(cp)
    cp = run_selftest(kit, ["--json", "--tap"], PLUGBOX_SELFTEST=str(base))
    assert cp.returncode == 2 and "choose one" in cp.stderr, explain(cp)
