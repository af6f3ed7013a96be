"""Text that plugbox cuts to fit is cut between whole characters.

A plugin's output lines, its log records (logger and message), the lines
`plugbox serve` writes to its log, and error messages that quote a name a
client gave are each cut at some byte count (a line buffer, a log line, a
message buffer). Cut inside a character, the host got the half as \\xNN
escapes where a sanitiser runs after the cut, and invalid UTF-8 where none
does: in the daemon's text log, and in an Error's message on the socket
(a protobuf string field, which a strict client refuses to decode).
Each test puts a multi-byte character across the cut.
"""

import json

import pbwire
from pbserve import serve, sockdir  # noqa: F401 (fixtures used by name)
from pbtest import EXIT_OK, explain, plugin_lines

E = "\u00e9"                       # two bytes in UTF-8


def no_escapes(lines):
    return [line for line in lines if "\\x" in line or "\ufffd" in line]


def test_a_long_log_record_is_cut_between_characters(plugbox, paths):
    # "WARNING " + logger + ": " + text in a 4096-byte line: the logger is
    # cut at 128 bytes, the text at what is left; each cut falls inside an é.
    logger, text = "x" + E * 100, "y" + E * 3000
    cp = plugbox.call(paths.plugins / "runtime", "logger", "emit_as", json.dumps(logger), '"WARNING"',
                      json.dumps(text))
    assert cp.returncode == EXIT_OK, explain(cp)
    lines = plugin_lines(cp, "logger")
    assert len(lines) == 1 and not no_escapes(lines), explain(cp)
    head = f"WARNING x{E * 63}: "
    assert lines[0].startswith(head + "y" + E), explain(cp)
    shown = lines[0][len(head):]
    assert len(shown.encode()) >= 4095 - len(head.encode()) - 1, len(shown.encode())
    assert text.startswith(shown)


def test_a_long_output_line_goes_out_in_pieces_of_whole_characters(plugbox, paths):
    # 10,000 bytes on one line: pieces of at most 4095 bytes, which is odd.
    text = E * 5000
    cp = plugbox.call(paths.features, "printer", "say", json.dumps(text))
    assert cp.returncode == EXIT_OK, explain(cp)
    lines = plugin_lines(cp, "printer")
    assert not no_escapes(lines), explain(cp)
    # stdout's line in 2047 + 2047 + 906 characters, stderr's "err: " +
    # 2045, then 2047 + 908 (stdout and stderr may interleave)
    assert "err: " + E * 2045 in lines, explain(cp)
    pieces = [len(line) for line in lines if line and set(line) == {E}]
    assert sorted(pieces) == [906, 908, 2047, 2047, 2047], pieces


def daemon_lines(d, plugin):
    """The daemon's log lines of plugin, from its raw bytes: each must be UTF-8."""
    with open(d.log_path, "rb") as f:
        raw = f.read()
    lines = raw.split(b"\n")
    bad = [line[:80] for line in lines if _invalid(line)]
    assert not bad, f"the daemon's log has lines that are not UTF-8: {bad}"
    return [line.decode() for line in lines if line.startswith(f"[{plugin}] ".encode())]


def _invalid(line):
    try:
        line.decode()
        return False
    except UnicodeDecodeError:
        return True


def test_the_daemons_text_log_is_utf8_when_it_cuts(serve, copy_plugins, paths):
    # A client that does not ask for its calls' output: the log record goes
    # to the daemon's log as lines of at most 1900 bytes of text after a
    # logger of at most 128, and an output line of 8 KiB into a 4 KiB line.
    pdir = copy_plugins(paths.plugins / "runtime", only=["logger"])
    copy_plugins(paths.features, only=["printer"])
    d = serve(pdir)
    conn = d.conn()
    logger, text = "x" + E * 100, "y" + E * 1000
    conn.call(1, "logger", "emit_as", logger, "WARNING", text)
    conn.call(2, "printer", "say", "z" * 8 + E * 5000)
    got = {r["id"]: r for r in (conn.recv(timeout=60) for _ in range(2))}
    assert got[1]["body"] == "result" and got[2]["body"] == "result", got
    d.stop()
    logged = daemon_lines(d, "logger")
    head = f"[logger] WARNING x{E * 63}: y"
    assert any(line.startswith(head) for line in logged), d.stderr()
    line = next(line for line in logged if line.startswith(head))
    assert text.startswith(line[len(head) - 1:]) and len(line[len(head) - 1:].encode()) >= 1899, line
    printed = daemon_lines(d, "printer")
    assert any(line.startswith("[printer] zzzzzzzz" + E) for line in printed), d.stderr()
    assert not no_escapes(logged + printed), d.stderr()


def test_the_daemons_json_log_shows_no_half_characters(serve, copy_plugins, paths):
    pdir = copy_plugins(paths.plugins / "runtime", only=["logger"])
    d = serve(pdir, "--log-format", "json")
    conn = d.conn()
    conn.call(1, "logger", "emit_as", "x" + E * 100, "WARNING", "y" + E * 1000)
    assert conn.recv(timeout=60)["body"] == "result"
    d.stop()
    records = [json.loads(line) for line in d.stderr().splitlines()]
    logged = [r["message"] for r in records if r.get("event") == "output" and r.get("plugin") == "logger"]
    assert logged and logged[0].startswith(f"WARNING x{E * 63}: y{E}"), records
    assert not no_escapes(logged), logged


def test_an_error_quoting_a_long_name_is_valid_utf8(serve, copy_plugins, paths):
    # The library's message and the daemon's Error are 512-byte buffers: a
    # hook's plugin name of 300 é ("no plugin '...' in DIR") fills them past
    # the end, and the message is sent in an Error.
    pdir = copy_plugins(paths.plugins / "runtime", only=["logger"])
    d = serve(pdir)
    conn = d.conn()
    conn.upgrade(2)
    for id, name in enumerate(("y" + E * 300, E * 300), 1):
        conn.send_raw(pbwire.hook_frame(id, "group", plugins=[name]))
        error = conn.recv()                  # pbwire decodes strings strictly
        assert error["body"] == "error" and error["kind"] == "not_found", error["message"]
        assert f"no plugin '{name[:20]}" in error["message"], error["message"]
        assert len(error["message"].encode()) >= 507, len(error["message"].encode())
    conn.call(3, "logger", "emit", "INFO", "still here")
    assert conn.recv(timeout=60)["body"] == "result"
