"""`plugbox call-all --group`: an entry-point group across every plugin of
tests/plugins/hooks, as a framework's `for ep in entry_points(group=...)`
loop would run it, but each plugin in its own sandbox."""

import json

from pbtest import EXIT_OK, EXIT_RAISED, EXIT_USAGE, assert_one_error_line


def answers(cp):
    return json.loads(cp.stdout)


def test_every_provider_answers_in_order_with_errors_beside_results(plugbox, paths):
    cp = plugbox.run(["call-all", "--plugins", paths.plugins / "hooks", "--group", "typeA", "7", '"x"'])
    out = answers(cp)
    assert [(a["plugin"], a["name"]) for a in out] == [
        ("p0_broken", ""), ("p1_none", "run"), ("p2_fails", "run"),
        ("p3_value", "run"), ("p3_value", "zrun"), ("p4_value", "run")]
    assert out[0]["error"]["kind"] == "config" and "differs from the directory name" in out[0]["error"]["message"]
    assert out[1]["result"] is None
    assert out[2]["error"] == {"kind": "exception", "type": "ValueError", "message": "p2_fails refuses"}
    assert out[3]["result"] == {"plugin": "p3_value", "entry": "run", "args": [7, "x"]}
    assert out[4]["result"]["entry"] == "zrun"
    # The worst error decides the exit status (a config error, 2); the
    # plugin's traceback is on stderr as `plugbox call` prints it.
    assert cp.returncode == EXIT_USAGE, cp.stderr
    assert "plugin 'p2_fails' raised ValueError: p2_fails refuses" in cp.stderr
    assert 'p2_fails/__init__.py", line 5, in run' in cp.stderr


def test_first_result_stops_at_the_first_value(plugbox, paths):
    cp = plugbox.run(["call-all", "--plugins", paths.plugins / "hooks", "--group", "typeA", "--first"])
    out = answers(cp)
    assert [(a["plugin"], a["name"]) for a in out] == [
        ("p0_broken", ""), ("p1_none", "run"), ("p2_fails", "run"), ("p3_value", "run")]
    assert out[-1]["result"]["plugin"] == "p3_value"


def test_exit_status_is_ok_when_all_answer_and_raised_when_one_raises(plugbox, paths, copy_plugins):
    plugins = copy_plugins(paths.plugins / "hooks", only=["p3_value", "p4_value", "p5_none_group"])
    cp = plugbox.run(["call-all", "--plugins", plugins, "--group", "typeB"])
    assert cp.returncode == EXIT_OK, cp.stderr
    assert answers(cp) == [{"plugin": "p4_value", "name": "other", "result": "p4_value typeB"},
                           {"plugin": "p5_none_group", "name": "other", "result": "p5 typeB"}]
    plugins = copy_plugins(paths.plugins / "hooks", only=["p2_fails"], dest="raising")
    cp = plugbox.run(["call-all", "--plugins", plugins, "--group", "typeA"])
    assert cp.returncode == EXIT_RAISED


def test_an_unknown_group_is_an_error_unless_allowed(plugbox, paths, copy_plugins):
    plugins = copy_plugins(paths.plugins / "hooks", only=["p5_none_group"])
    cp = plugbox.run(["call-all", "--plugins", plugins, "--group", "typeA"])
    assert_one_error_line(cp, "--group typeA", "no plugin declares entry-point group 'typeA'")
    cp = plugbox.run(["call-all", "--plugins", plugins, "--group", "typeb"])
    assert_one_error_line(cp, "did you mean 'typeB'?")
    cp = plugbox.run(["call-all", "--plugins", plugins, "--group", "typeA", "--allow-unknown-group"])
    assert cp.returncode == EXIT_OK
    assert answers(cp) == []
    assert "no plugin in" in cp.stderr and "provides entry-point group 'typeA'" in cp.stderr


def test_only_some_plugins_in_their_order_and_first_result_in_turn(plugbox, paths):
    hooks = paths.plugins / "hooks"
    cp = plugbox.run(["call-all", "--plugins", hooks, "--group", "typeA", "--only", "p4_value,p3_value"])
    assert cp.returncode == EXIT_OK, cp.stderr
    assert [(a["plugin"], a["name"]) for a in answers(cp)] == [
        ("p4_value", "run"), ("p3_value", "run"), ("p3_value", "zrun")]
    cp = plugbox.run(["call-all", "--plugins", hooks, "--group", "typeA", "--only", "p4_value,p3_value",
                      "--order", "name", "--first"])
    assert [(a["plugin"], a["name"]) for a in answers(cp)] == [("p3_value", "run")]
    cp = plugbox.run(["call-all", "--plugins", hooks, "--group", "typeA", "--only", "p3_value,nope"])
    assert_one_error_line(cp, "no plugin 'nope'")
    cp = plugbox.run(["call-all", "--plugins", hooks, "--group", "typeA", "--order", "given"])
    assert_one_error_line(cp, "--order given needs --only")
    cp = plugbox.run(["call-all", "--plugins", hooks, "--group", "typeA", "--order", "random"])
    assert_one_error_line(cp, "--order must be name, priority or given")


def test_usage_errors_name_the_problem(plugbox, paths):
    cp = plugbox.run(["call-all", "--plugins", paths.plugins / "hooks"])
    assert_one_error_line(cp, "call-all needs --group GROUP")
    cp = plugbox.run(["call-all", "--plugins", paths.plugins / "hooks", "--group", "a:b"])
    assert_one_error_line(cp, "--group a:b", "without ':'")
    cp = plugbox.run(["call-all", "--plugins", paths.plugins / "hooks", "--group", "typeA", "{bad"])
    assert_one_error_line(cp, "argument 1: invalid JSON")
    cp = plugbox.run(["call-all", "--group", "typeA"])
    assert_one_error_line(cp, "call-all needs --plugins DIR")
