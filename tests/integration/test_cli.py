"""The command line as a user meets it: argument parsing, exit statuses,
what goes to stdout and stderr, exceptions, timeouts and crashes.

Exit statuses: 0 success; 1 the plugin raised; 2 usage or configuration
error (one line on stderr, starting "plugbox: "); 3 the sandbox stopped the
plugin; 4 the worker died, timed out or hit a resource limit."""

import re
import subprocess

import pytest

from pbtest import (EXIT_DIED, EXIT_OK, EXIT_RAISED, assert_one_error_line, explain,
                    plugin_lines, result_of, scaled, stderr_lines, supervisor_lines)


# --- usage errors: exit 2, exactly one line ---

def test_no_arguments(plugbox):
    assert_one_error_line(plugbox.run([]))


def test_unknown_command(plugbox):
    assert_one_error_line(plugbox.run(["frobnicate"]), "frobnicate")


COMMANDS = ["list", "call", "call-all", "serve", "stats", "install", "remove", "cache", "learn", "policy", "selftest"]


def test_help_lists_every_command(plugbox):
    """plugbox --help is made from the command table: every command, with a
    summary and its usage; and each command answers --help with its own."""
    cp = plugbox.run(["--help"])
    assert cp.returncode == EXIT_OK and cp.stderr == "", explain(cp)
    for name in COMMANDS:
        assert re.search(rf"^  {re.escape(name)} +\S", cp.stdout, re.M), name
        assert f"plugbox {name} " in cp.stdout, name
    for name in COMMANDS:
        for flag in ("--help", "-h"):
            one = plugbox.run([name, flag])
            assert one.returncode == EXIT_OK and one.stderr == "", explain(one)
            assert one.stdout.startswith(f"plugbox {name}: "), one.stdout
            assert f"usage: plugbox {name} " in one.stdout, one.stdout


@pytest.mark.parametrize("argv", [
    ["call", "--plugins", "DIR", "--help"],
    ["call", "--timeout", "5", "-h"],
    ["call-all", "--first", "--help"],
    ["list", "--json", "--help"],
    ["serve", "--eager", "--help"],
    ["learn", "--plugins", "DIR", "--help"],
    ["cache", "--plugins", "DIR", "--help"],
    ["selftest", "--json", "--help"],
    ["install", "--plugins", "DIR", "--help"],
    ["remove", "--plugins", "DIR", "-h"],
    ["policy", "check", "--help"],
    ["policy", "show", "--help"],
])
def test_help_among_the_options(plugbox, argv):
    """--help anywhere among a command's options (or after a sub-command)
    is that command's usage on stdout, exit 0, whatever the other options."""
    cp = plugbox.run(argv)
    assert cp.returncode == EXIT_OK and cp.stderr == "", explain(cp)
    assert cp.stdout.startswith(f"plugbox {argv[0]}: "), cp.stdout
    assert f"usage: plugbox {argv[0]} " in cp.stdout, cp.stdout


def test_misspelt_command_gets_a_suggestion(plugbox):
    assert_one_error_line(plugbox.run(["cal", "--plugins", "x"]), "'cal'", "did you mean 'call'?")
    line = assert_one_error_line(plugbox.run(["frobnicate"]), "frobnicate")
    assert "did you mean" not in line


def test_version(plugbox):
    cp = plugbox.run(["--version"])
    assert cp.returncode == EXIT_OK and re.fullmatch(r"plugbox \d+\.\d+\S*\n", cp.stdout), explain(cp)


def test_help_after_an_operand_is_not_help(plugbox, paths):
    """--help is only the command's first argument: after PLUGIN it is an
    argument like any other (here a JSON error, exit 2)."""
    cp = plugbox.run(["call", "--plugins", paths.seed, "plug1", "requests_version", "--help"])
    assert_one_error_line(cp)


def test_unknown_option(plugbox, paths):
    assert_one_error_line(plugbox.run(["call", "--plugins", paths.seed, "--bogus", "plug1", "requests_version"]),
                          "--bogus")


def test_call_without_plugins_option(plugbox):
    assert_one_error_line(plugbox.run(["call", "plug1", "requests_version"]))


def test_call_without_function(plugbox, paths):
    assert_one_error_line(plugbox.run(["call", "--plugins", paths.seed, "plug1"]))


def test_call_without_plugin(plugbox, paths):
    assert_one_error_line(plugbox.run(["call", "--plugins", paths.seed]))


def test_plugins_directory_missing(plugbox, scratch):
    missing = scratch / "no-such-dir"
    assert_one_error_line(plugbox.run(["call", "--plugins", missing, "plug1", "requests_version"]),
                          str(missing))


@pytest.mark.parametrize("value", ["abc", "-3", ""])
def test_bad_timeout(plugbox, paths, value):
    assert_one_error_line(plugbox.run(["call", "--plugins", paths.seed, "--timeout", value,
                                       "plug1", "requests_version"]), "timeout")


def test_missing_plugin(plugbox, paths):
    assert_one_error_line(plugbox.call(paths.seed, "nosuchplugin", "requests_version"), "nosuchplugin")


@pytest.mark.parametrize("name", ["../seed", "plug1/..", "plug 1", ".", "..", "plug1.deps"])
def test_plugin_name_must_be_a_plain_name(plugbox, paths, name):
    # Names are [A-Za-z0-9_-]+: no path tricks reach outside --plugins.
    assert_one_error_line(plugbox.call(paths.seed, name, "requests_version"))


def test_misspelt_plugin_gets_a_suggestion(plugbox, paths):
    """The nearest directory of PLUGINS, by edit distance (a swap is one)."""
    assert_one_error_line(plugbox.call(paths.features, "ehco", "echo", "1"),
                          "no plugin 'ehco'", "(did you mean 'echo'?)")
    assert_one_error_line(plugbox.call(paths.features, "tomllists", "square", "1"), "(did you mean 'tomllist'?)")
    line = assert_one_error_line(plugbox.call(paths.features, "zzzzzz", "echo", "1"), "zzzzzz")
    assert "did you mean" not in line


def test_plugin_suggestions_are_plugin_names_only(plugbox, paths, copy_plugins):
    """A directory whose name is not a plugin name is never suggested, even
    when it is the nearest: suggestions reach the terminal as they are."""
    plugins = copy_plugins(paths.features, only=["echo"])
    (plugins / "ech\x1b").mkdir()
    line = assert_one_error_line(plugbox.call(plugins, "ech", "echo", "1"), "did you mean 'echo'?")
    assert "\x1b" not in line


def test_misspelt_function_gets_a_suggestion(plugbox, paths):
    """From what the plugin exports: @plugbox.export, plugin.toml's exports
    (list or table) and, for group:name, the group's entry points."""
    assert_one_error_line(plugbox.call(paths.features, "echo", "ecoh", "1"),
                          "no function 'ecoh'", "(did you mean 'echo'?)")
    assert_one_error_line(plugbox.call(paths.features, "tomllist", "sqaure", "2"), "(did you mean 'square'?)")
    assert_one_error_line(plugbox.call(paths.features, "tomltable", "dobule", "2"), "(did you mean 'double'?)")
    assert_one_error_line(plugbox.call(paths.features, "mytool", "plugbox.demo:helo"),
                          "(did you mean 'plugbox.demo:hello'?)")
    line = assert_one_error_line(plugbox.call(paths.features, "echo", "qqqqqqqq"), "qqqqqqqq")
    assert "did you mean" not in line and "@plugbox.export" in line


def test_a_plugin_cannot_smuggle_text_through_the_suggestion(plugbox, scratch):
    """The worker runs the plugin's code, which can replace the worker's
    suggestion with escape sequences; the supervisor checks the name again
    and leaves out a suggestion that is not of name characters."""
    plugin = scratch / "plugins" / "liar"
    plugin.mkdir(parents=True)
    (plugin / "__init__.py").write_text(
        "import sys\n"
        "import plugbox\n"
        "f = sys._getframe()\n"
        "while f is not None and '_did_you_mean' not in f.f_globals:\n"
        "    f = f.f_back\n"
        "f.f_globals['_did_you_mean'] = lambda typed, known: \" (did you mean 'x\\x1b[2Jx'?)\"\n"
        "@plugbox.export\n"
        "def echo(x):\n"
        "    return x\n")
    line = assert_one_error_line(plugbox.call(scratch / "plugins", "liar", "ecoh", "1"), "no function 'ecoh'")
    assert "\x1b" not in line and "did you mean" not in line, line


def test_a_bare_word_gets_the_quoting_hint(plugbox, paths):
    line = assert_one_error_line(plugbox.call(paths.features, "echo", "echo", "world"), "argument 1")
    assert line.endswith("""to pass the string world, write '"world"'"""), line
    line = assert_one_error_line(plugbox.call(paths.features, "echo", "echo_all", "1", "hello there"), "argument 2")
    assert line.endswith("""to pass the string hello there, write '"hello there"'"""), line
    # Not for a try at JSON (nor anything that would need escaping).
    for arg in ("{bad", "[1,", "it's"):
        line = assert_one_error_line(plugbox.call(paths.features, "echo", "echo", arg), "argument 1")
        assert "to pass the string" not in line, line


def test_options_after_plugin_get_a_hint(plugbox, paths):
    assert_one_error_line(plugbox.call(paths.features, "echo", "echo", "--timeout", "5"),
                          "argument 1", "'--timeout' is an option", "options go before PLUGIN")
    assert_one_error_line(plugbox.call(paths.features, "echo", "echo", "1", "--policies=x"),
                          "argument 2", "options go before PLUGIN")
    assert_one_error_line(plugbox.call(paths.features, "echo", "--timeout", "5", "echo"),
                          "'--timeout'", "options go before PLUGIN")
    assert_one_error_line(plugbox.run(["call-all", "--plugins", paths.features, "--group", "g", "1", "--first"]),
                          "argument 2", "'--first' is an option", "options go before")
    # A JSON argument that looks like an option stays an argument.
    assert plugbox.call_ok(paths.features, "echo", "echo", "-5") == -5


def _complete(paths, *words):
    """What bash offers for the last word of `words` with the shipped completion."""
    script = paths.srcdir.parent / "completions" / "plugbox"
    cp = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c",
         'source "$0"; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); '
         '[[ $(complete -p plugbox) == *"-F _plugbox"* ]] || exit 9; '
         '_plugbox; printf "%s\\n" "${COMPREPLY[@]}"', str(script), *words],
        capture_output=True, text=True, timeout=30)
    assert cp.returncode == 0, cp.stderr
    return sorted(cp.stdout.split())


def test_bash_completion(paths, copy_plugins):
    assert _complete(paths, "plugbox", "ca") == ["cache", "call", "call-all"]
    assert _complete(paths, "plugbox", "call", "--pl") == ["--plugins"]
    assert _complete(paths, "plugbox", "call", "--spawn", "") == ["exec", "fork-server", "shared-zygote", "zygote"]
    assert _complete(paths, "plugbox", "policy", "") == ["--help", "check", "groups", "show"]
    plugins = copy_plugins(paths.features, only=["echo", "tomllist", "tomltable"])
    (plugins / "t\x1bbad").mkdir()
    assert _complete(paths, "plugbox", "call", "--plugins", str(plugins), "t") == ["tomllist", "tomltable"]
    assert _complete(paths, "plugbox", "call", f"--plugins={plugins}", "--timeout", "3", "e") == ["echo"]
    # After PLUGIN comes FUNCTION: no plugin names there.
    assert _complete(paths, "plugbox", "call", "--plugins", str(plugins), "echo", "t") == []


def test_bash_completion_is_installed_where_bash_completion_looks(paths):
    """configure puts it in pkg-config bash-completion's completionsdir when
    bash-completion is installed (else under DATADIR)."""
    if "--with-bash-completion-dir" in (paths.builddir.parent / "config.status").read_text():
        pytest.skip("configure was told where (make distcheck does: its own prefix)")
    makefile = (paths.builddir.parent / "Makefile").read_text()
    where = re.search(r"^bashcompletiondir = (.*)$", makefile, re.M).group(1)
    pc = subprocess.run(["pkg-config", "--variable=completionsdir", "bash-completion"],
                        capture_output=True, text=True)
    if pc.returncode == 0 and pc.stdout.strip():
        assert where == pc.stdout.strip()
    else:
        assert where.endswith("/bash-completion/completions")


def test_missing_function(plugbox, paths):
    assert_one_error_line(plugbox.call(paths.seed, "plug1", "nosuchfunction"), "nosuchfunction")


def test_bad_json_names_the_argument(plugbox, paths):
    assert_one_error_line(plugbox.call(paths.features, "echo", "echo", "{bad"), "argument 1")
    assert_one_error_line(plugbox.call(paths.features, "echo", "echo_all", "1", "[1,"), "argument 2")
    assert_one_error_line(plugbox.call(paths.features, "echo", "echo_all", "1", "2", "'single'"),
                          "argument 3")


def test_option_parsing_stops_at_the_plugin(plugbox, paths):
    # After PLUGIN everything is FUNCTION or ARG_JSON, even if it looks like
    # an option.
    assert plugbox.call_ok(paths.features, "echo", "echo", "-5") == -5
    assert plugbox.call_ok(paths.features, "echo", "echo_all", "-1", "-2.5") == \
        {"args": [-1, -2.5], "kwargs": {}}
    cp = plugbox.call(paths.features, "echo", "echo", "--timeout")
    assert_one_error_line(cp, "argument 1")


def test_options_in_any_order(plugbox, paths):
    cp = plugbox.run(["call", "--timeout", "30", "--plugins", paths.seed, "plug1", "requests_version"])
    assert cp.returncode == EXIT_OK, explain(cp)
    assert result_of(cp) == "2.2.0"


def test_list_skips_entries_with_invalid_names(plugbox, paths, copy_plugins):
    plugins = copy_plugins(paths.seed)
    (plugins / "has.dot").mkdir()
    (plugins / "has.dot" / "__init__.py").write_text("")
    (plugins / "has space").mkdir()
    (plugins / "has space" / "__init__.py").write_text("")
    cp = plugbox.list(plugins)
    assert cp.returncode == EXIT_OK, explain(cp)
    names = sorted(line.split("\t")[0] for line in cp.stdout.splitlines())
    assert names == ["plug1", "plug2"], explain(cp)
    for bad in ("has.dot", "has space"):
        assert any(bad in line for line in stderr_lines(cp)), f"no warning for {bad!r}" + explain(cp)


def test_list_warning_does_not_pass_escape_sequences_through(plugbox, paths, copy_plugins):
    plugins = copy_plugins(paths.seed)
    (plugins / "evil\x1b[2J\x1b]0;owned\x07").mkdir()
    cp = plugbox.list(plugins)
    assert cp.returncode == EXIT_OK, explain(cp)
    assert "\x1b" not in cp.stderr and "\x07" not in cp.stderr, explain(cp)
    assert any("evil\\x1b[2J\\x1b]0;owned\\x07" in line for line in stderr_lines(cp)), explain(cp)


# --- the plugin raised: exit 1, traceback, final line ---

def test_exception_exit_status_and_traceback(plugbox, paths):
    cp = plugbox.call(paths.features, "raiser", "fail", '"bad value 42"')
    assert cp.returncode == EXIT_RAISED, explain(cp)
    assert cp.stdout == "", explain(cp)
    assert "Traceback (most recent call last):" in cp.stderr, explain(cp)
    assert re.search(r'File "[^"]*raiser/__init__\.py", line \d+, in fail', cp.stderr), explain(cp)
    assert stderr_lines(cp)[-1] == "plugbox: plugin 'raiser' raised ValueError: bad value 42", explain(cp)


def test_custom_exception_with_multiline_message(plugbox, paths):
    cp = plugbox.call(paths.features, "raiser", "custom")
    assert cp.returncode == EXIT_RAISED, explain(cp)
    # The traceback goes through the plugin's submodule, two calls deep.
    assert re.search(r'raiser/errors\.py", line \d+, in _level2', cp.stderr), explain(cp)
    assert re.search(r"^plugbox: plugin 'raiser' raised (raiser\.errors\.)?PluginError: first line",
                     cp.stderr, re.M), explain(cp)
    assert "second line" in cp.stderr, explain(cp)


def test_key_error(plugbox, paths):
    cp = plugbox.call(paths.features, "raiser", "key_error")
    assert cp.returncode == EXIT_RAISED, explain(cp)
    assert stderr_lines(cp)[-1] == "plugbox: plugin 'raiser' raised KeyError: 'missing'", explain(cp)


def test_exception_at_import_time(plugbox, paths):
    cp = plugbox.call(paths.features, "brokenimport", "never_reached")
    assert cp.returncode == EXIT_RAISED, explain(cp)
    assert stderr_lines(cp)[-1] == \
        "plugbox: plugin 'brokenimport' raised RuntimeError: broken at import", explain(cp)


def test_wrong_argument_count_is_the_plugins_type_error(plugbox, paths):
    cp = plugbox.call(paths.features, "echo", "echo", "1", "2")
    assert cp.returncode == EXIT_RAISED, explain(cp)
    assert re.search(r"^plugbox: plugin 'echo' raised TypeError: ", cp.stderr, re.M), explain(cp)


# --- the plugin's own output ---

def test_print_is_attributed_and_kept_off_stdout(plugbox, paths):
    cp = plugbox.call(paths.features, "printer", "say", '"hello there"')
    assert cp.returncode == EXIT_OK, explain(cp)
    assert result_of(cp) == "done"
    printed = plugin_lines(cp, "printer")
    assert "printer imported" in printed, explain(cp)        # top-level code
    assert "hello there" in printed, explain(cp)             # sys.stdout
    assert "err: hello there" in printed, explain(cp)        # sys.stderr
    assert "hello" not in cp.stdout


@pytest.mark.parametrize("how", ["reconfigured", "buffered"])
def test_print_to_a_holding_stream_still_comes_out(plugbox, paths, how):
    """The worker flushes sys.stdout before it answers, unless the stream
    cannot hold output: one reconfigured with write_through off, or a
    write-through one over a buffered writer, can, and is flushed."""
    cp = plugbox.call(paths.features, "printer", "say_held", '"held text"', f'"{how}"')
    assert cp.returncode == EXIT_OK, explain(cp)
    assert result_of(cp) == "done"
    assert "held text" in plugin_lines(cp, "printer"), explain(cp)


def test_multiline_print_is_prefixed_per_line(plugbox, paths):
    cp = plugbox.call(paths.features, "printer", "say", '"first\\nsecond"')
    assert cp.returncode == EXIT_OK, explain(cp)
    printed = plugin_lines(cp, "printer")
    assert "first" in printed and "second" in printed, explain(cp)
    assert not any(line == "second" for line in cp.stderr.splitlines()), explain(cp)


def test_raw_write_to_fd_1_does_not_corrupt_the_result(plugbox, paths):
    cp = plugbox.call(paths.features, "printer", "raw_fd_write", '"raw write on fd 1"')
    assert cp.returncode == EXIT_OK, explain(cp)
    assert result_of(cp) == "done"
    assert "raw write on fd 1" in plugin_lines(cp, "printer"), explain(cp)


def test_output_flood_does_not_block(plugbox, paths):
    # About 2 MiB of output, far more than a pipe holds: the supervisor must
    # keep draining it (or cap it), and the call still returns.
    cp = plugbox.call(paths.features, "printer", "flood", "20000", "100",
                      options=["--timeout", "30"], timeout=60)
    assert cp.returncode == EXIT_OK, explain(cp)
    assert result_of(cp) == 20000


# --- timeouts and crashes: exit 4 ---

def test_timeout_on_sleeping_plugin(plugbox, paths):
    cp = plugbox.call(paths.features, "slow", "sleep", "60", options=["--timeout", "2"], timeout=30)
    assert cp.returncode == EXIT_DIED, explain(cp)
    assert "timed out" in cp.stderr, explain(cp)
    assert any("slow" in line for line in supervisor_lines(cp, "slow")), explain(cp)
    assert cp.stdout == ""
    assert 1.5 <= cp.elapsed < scaled(6), f"took {cp.elapsed:.1f} s" + explain(cp)


def test_timeout_on_spinning_plugin_that_ignores_sigterm(plugbox, paths):
    cp = plugbox.call(paths.features, "slow", "spin_ignoring_sigterm", options=["--timeout", "2"], timeout=30)
    assert cp.returncode == EXIT_DIED, explain(cp)
    assert "timed out" in cp.stderr, explain(cp)
    assert cp.elapsed < scaled(6), f"took {cp.elapsed:.1f} s" + explain(cp)


def test_call_within_timeout_succeeds(plugbox, paths):
    assert plugbox.call_ok(paths.features, "slow", "sleep", "0.2", options=["--timeout", "30"]) == 0.2


@pytest.mark.parametrize("function, args", [
    ("exit_now", ["7"]),
    ("exit_now", ["0"]),
    ("abort", []),
    ("segfault", []),
])
def test_worker_dying_mid_call(plugbox, paths, function, args):
    cp = plugbox.call(paths.features, "crasher", function, *args, options=["--timeout", "30"])
    assert cp.returncode == EXIT_DIED, explain(cp)
    assert cp.stdout == "", explain(cp)
    assert any("crasher" in line for line in supervisor_lines(cp, "crasher")), explain(cp)
    # The supervisor survives to answer the next call.
    assert plugbox.call_ok(paths.features, "echo", "echo", '"still here"') == "still here"


def test_plugin_logging_reaches_stderr_tagged_with_the_plugin(plugbox, paths):
    cp = plugbox.call(paths.plugins / "runtime", "logger", "emit", '"WARNING"', '"disk almost full"')
    assert cp.returncode == EXIT_OK, explain(cp)
    assert plugin_lines(cp, "logger") == ["WARNING logger.test: disk almost full"]
    cp = plugbox.call(paths.plugins / "runtime", "logger", "emit", '"DEBUG"', '"below the level"')
    assert cp.returncode == EXIT_OK and plugin_lines(cp, "logger") == [], explain(cp)


def test_plugbox_call_says_how_many_log_records_were_dropped(plugbox, paths):
    # More records than the rate in one short call: the note that counts
    # the rest comes before the worker ends, as the library gets it.
    cp = plugbox.call(paths.plugins / "runtime", "logger", "flood", "1000")
    assert cp.returncode == EXIT_OK and result_of(cp) == 1000, explain(cp)
    lines = plugin_lines(cp, "logger")
    shown = [line for line in lines if line.startswith("INFO logger.test: line ")]
    notes = [line for line in lines if "dropped" in line]
    assert 0 < len(shown) < 1000, explain(cp)
    assert notes == [f"WARNING plugbox: dropped {1000 - len(shown)} log records (more than 199 a second)"], \
        explain(cp)


def test_a_logged_exception_shows_its_traceback_under_the_message(plugbox, paths):
    cp = plugbox.call(paths.plugins / "runtime", "logger", "emit_exc")
    assert cp.returncode == EXIT_OK, explain(cp)
    lines = plugin_lines(cp, "logger")
    assert lines[0] == "ERROR logger.test: caught it", explain(cp)
    assert lines[1] == "  Traceback (most recent call last):", explain(cp)
    assert lines[-1] == "  ValueError: boom for the log", explain(cp)


def test_plugin_logging_leaves_the_root_logger_to_the_plugin(plugbox, paths):
    # The root logger has no handler, as in a fresh interpreter, so
    # basicConfig works; what no handler takes still reaches the host.
    cp = plugbox.call(paths.plugins / "runtime", "logger", "reconfigure")
    assert cp.returncode == EXIT_OK, explain(cp)
    assert result_of(cp) == {"fresh": True, "configured": "DEBUG:logger.test:configured 1\n"}
    assert plugin_lines(cp, "logger") == ["WARNING logger.test: no handler again"], explain(cp)


def test_an_ungranted_host_call_raises_in_the_plugin_and_is_logged(plugbox, paths):
    # `plugbox call` registers no host function and the default policy grants none
    cp = plugbox.call(paths.plugins / "runtime", "hostcalls", "ungranted")
    assert cp.returncode == EXIT_OK, explain(cp)
    kind, message = result_of(cp)
    assert kind == "PermissionError"
    assert "may not call host function 'secret'" in message and "@host-call secret" in message
    assert any("denied host call secret(): not granted by policy" in line
               for line in supervisor_lines(cp, "hostcalls")), explain(cp)
