"""Host functions: what a plugin may call back (plugbox.host.NAME(...)), granted
per plugin by the operator's policy (@host-call NAME)."""

import asyncio

import pytest

import plugbox

GRANTS = "add recurse fail later missing who value raiser kept nothing interrupted aget"


@pytest.fixture
def hosted(supervisor, paths, policies, copy_plugins):
    """(sup, output lines) over hostcalls (tests/plugins/runtime) and hostpy
    (tests/python/plugins), whose policies grant GRANTS; `stranger`, a copy
    of hostpy, is granted nothing."""
    plugins = copy_plugins({"hostcalls": paths.runtime / "hostcalls", "hostpy": paths.own / "hostpy",
                            "stranger": paths.own / "hostpy"})
    grant = f"@include default\n@host-call {GRANTS}\n"
    lines = []
    sup = supervisor(plugins, policies({"hostcalls": grant, "hostpy": grant}),
                     output=lambda *a: lines.append(a))
    return sup, lines


def test_a_granted_host_function_gets_the_plugins_arguments(hosted):
    sup, _ = hosted
    seen = []

    @sup.register("value")
    def value(*args, **kwargs):
        seen.append((args, kwargs))
        return {"args": list(args), "kwargs": kwargs}

    assert sup.call("hostpy", "host", "value", 1, b"\0", [None], k={2: 3.5}) == \
        {"value": {"args": [1, b"\0", [None]], "kwargs": {"k": {2: 3.5}}}}
    assert seen == [((1, b"\0", [None]), {"k": {2: 3.5}})]


def test_register_forms(hosted):
    sup, _ = hosted

    def add(a, b):
        return a + b

    assert sup.register(add) is add                      # under its own name
    assert sup.call("hostcalls", "add_via_host", 2, 40) == 42
    assert sup.register("add", lambda a, b: a * b) is not None   # replaces it
    assert sup.call("hostcalls", "add_via_host", 2, 40) == 80

    @sup.register("value")
    def anything():
        return "decorated"
    assert anything() == "decorated"                     # still the function
    assert sup.call("hostpy", "host", "value") == {"value": "decorated"}
    with pytest.raises(ValueError, match="host function name"):
        sup.register("no-dashes", add)
    with pytest.raises(TypeError):
        sup.register("add", "not callable")


def test_a_host_function_may_call_the_plugin_back(hosted):
    sup, _ = hosted

    @sup.register("recurse")
    def recurse(n):
        # the plugin waits in its host call; this nested call reaches it
        return sup.call("hostcalls", "nested", n - 1)

    assert sup.call("hostcalls", "nested", 3) == "bottom"
    assert sup.call("hostcalls", "nested", 1) == "bottom"


def test_an_ungranted_host_function_is_a_permission_error_in_the_plugin(hosted):
    sup, lines = hosted
    sup.register("secret", lambda: "leaked")
    sup.register("value", lambda: "granted to others")
    kind, message = sup.call("hostcalls", "ungranted")
    assert kind == "PermissionError"
    assert "'secret'" in message and "@host-call secret" in message
    assert ("hostcalls", "supervisor", next(line for p, s, line in lines if "denied host call secret()" in line)) \
        in lines
    assert sup.call("stranger", "host", "value")["error"][0] == "PermissionError"


def test_a_granted_function_the_host_does_not_register_is_a_lookup_error(hosted):
    sup, _ = hosted
    kind, message, _ = sup.call("hostpy", "host", "missing")["error"]
    assert kind == "LookupError" and "registers no such function" in message


class Oops(Exception):
    pass


@pytest.mark.parametrize("exc, expected", [
    (ValueError("the host says no"), ["ValueError", "the host says no", None]),
    (KeyError("nokey"), ["KeyError", "'nokey'", None]),
    (PermissionError("not you"), ["PermissionError", "not you", None]),
    (TimeoutError("too slow"), ["TimeoutError", "too slow", None]),
    (LookupError("where"), ["LookupError", "where", None]),
    (IndexError("subclass of LookupError"), ["HostError", "IndexError: subclass of LookupError", "IndexError"]),
    (Oops("bad"), ["HostError", "Oops: bad", "Oops"]),
    (plugbox.NotFound("no plugin 'x'"), ["HostError", "NotFound: no plugin 'x'", "NotFound"]),
])
def test_what_a_host_function_raises_is_raised_in_the_plugin(hosted, exc, expected):
    sup, _ = hosted

    @sup.register("raiser")
    def raiser():
        raise exc

    assert sup.call("hostpy", "host", "raiser") == {"error": expected}


def test_the_plugin_keyword_names_the_caller_and_cannot_be_forged(hosted):
    sup, _ = hosted

    @sup.register("who")
    def who(greeting, *, plugin):
        return f"{greeting}, {plugin}"

    assert sup.call("hostpy", "host", "who", "hello") == {"value": "hello, hostpy"}
    assert sup.call("hostcalls", "ask", "who", "hi") == "hi, hostcalls"
    kind, message, _ = sup.call("hostpy", "host", "who", "hello", plugin="root")["error"]
    assert kind == "TypeError" and "'plugin'" in message


def test_a_result_that_cannot_be_sent_is_a_type_error_in_the_plugin(hosted):
    sup, _ = hosted
    sup.register("value", lambda: {1, 2})
    assert sup.call("hostpy", "host", "value") == \
        {"error": ["TypeError", "result of host function 'value': cannot send set", None]}
    sup.register("value", lambda: 2**64)
    assert sup.call("hostpy", "host", "value")["error"][0] == "ValueError"
    sup.register("value", lambda: None)
    assert sup.call("hostpy", "host", "value") == {"value": None}


def test_a_host_call_nobody_answers_is_failed_not_lost(hosted):
    sup, _ = hosted
    # below the Python layer: a handler that drops the host call
    sup._core.register("nothing", lambda hc: None)
    kind, message, _ = sup.call("hostpy", "host", "nothing")["error"]
    assert (kind, message) == ("RuntimeError", "the host function gave no answer")


def test_a_host_call_can_be_answered_later_once(hosted):
    sup, _ = hosted
    kept = []
    sup._core.register("kept", kept.append)

    async def main():
        pending = asyncio.ensure_future(sup.acall("hostpy", "twice", "kept", 7))
        while not kept:
            await asyncio.sleep(0.01)
        hc = kept.pop()
        assert (hc.plugin, hc.name, hc.args, hc.kwargs, hc.answered) == ("hostpy", "kept", (7,), {}, False)
        hc.return_value("first")
        assert hc.answered
        with pytest.raises(RuntimeError, match="already answered"):
            hc.return_value("again")
        while not kept:
            await asyncio.sleep(0.01)
        kept.pop().fail("ValueError", "second")
        with pytest.raises(plugbox.PluginError, match="ValueError: second"):
            await pending

    asyncio.run(main())


def test_closing_fails_the_host_calls_still_unanswered(hosted):
    sup, _ = hosted
    kept = []
    sup._core.register("kept", kept.append)

    async def main():
        pending = asyncio.ensure_future(sup.acall("hostpy", "host", "kept"))
        while not kept:
            await asyncio.sleep(0.01)
        sup.close()
        with pytest.raises(plugbox.Unavailable):
            await pending

    asyncio.run(main())
    assert kept[0].answered
    with pytest.raises(RuntimeError, match="already answered"):
        kept[0].return_value(1)   # nothing to answer any more: refused, not a crash


def test_a_keyboard_interrupt_in_a_host_function_reaches_the_host(hosted):
    sup, _ = hosted

    @sup.register("interrupted")
    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sup.call("hostpy", "host", "interrupted")
    # the plugin got its answer (a RuntimeError, unobserved), the worker is in order
    assert sup.call("hostpy", "echo", 5) == 5
    assert sup.calls_pending == 0
