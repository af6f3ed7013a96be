"""Values between a Python host and a plugin: what crosses, what comes back
as what, and what is refused before anything is sent."""

import collections
import enum
import math

import pytest

import plugbox
from pbpy import worker_pids


@pytest.fixture
def echo(supervisor, paths):
    sup = supervisor(paths.features)
    return sup


def nested(depth):
    value = []
    for _ in range(depth - 1):
        value = [value]
    return value


ROUND_TRIPS = [
    None, True, False, 0, -1, 2**63 - 1, -(2**63), 1.5, 0.1, -0.0, float("inf"), float("-inf"),
    "", "日本語 café 😀 Ω", 'line1\nline2\t"quoted" \\ \x01', b"", b"\x00\x01\xffplug",
    [], [1, [2, [3, None]]], {}, {"a": 1, "b": [True, 2.5]},
    {1: "one", None: "n", 2.5: "f", b"k": "bytes key", "s": {"deep": {"er": []}}},
    nested(63),
]


@pytest.mark.parametrize("value", ROUND_TRIPS, ids=range(len(ROUND_TRIPS)))
def test_values_come_back_as_they_went(echo, value):
    back = echo.call("echo", "echo", value)
    assert back == value and type(back) is type(value)
    if isinstance(value, float) and value == 0:
        assert math.copysign(1, back) == math.copysign(1, value)


def test_nan_and_keyword_arguments(echo):
    assert math.isnan(echo.call("echo", "echo", float("nan")))
    assert echo.call("echo", "echo_all", 1, x=b"\x00", y=[{}]) == {"args": [1], "kwargs": {"x": b"\x00", "y": [{}]}}


class Color(enum.IntEnum):
    RED = 1


class Text(str):
    pass


@pytest.mark.parametrize("sent, received", [
    ((1, (2, "three")), [1, [2, "three"]]),                    # tuples become lists
    (bytearray(b"ab"), b"ab"),                                   # bytes-like become bytes
    (memoryview(b"abcdef")[::2], b"ace"),                        # strided too
    (Color.RED, 1),                                              # subclasses: their base type
    (Text("t"), "t"),
    (collections.OrderedDict(b=1, a=2), {"b": 1, "a": 2}),
])
def test_values_become_their_wire_type(echo, sent, received):
    back = echo.call("echo", "echo", sent)
    assert back == received and type(back) is type(received)


def test_what_a_plugin_returns_arrives_as_its_wire_type(echo):
    assert echo.call("echo", "make", "tuple") == [1, "two", None, [3.5, True]]
    assert echo.call("echo", "make", "mixed_keys") == {"a": 1, 2: "b", None: "n", 2.5: "f", b"k": "bytes key"}
    assert echo.call("echo", "make", "int64_min") == -(2**63)
    assert math.isnan(echo.call("echo", "make", "nan"))
    assert echo.call("echo", "make", "deep60") == nested(60)
    assert echo.call("echo", "make_string", 100000) == "x" * 100000


def test_tuple_keys_travel_as_lists_and_come_back_as_tuples(supervisor, paths):
    sup = supervisor(paths.own)
    assert sup.call("hostpy", "tuple_keys") == {(1, (2, 3)): "tuple key", (): "empty"}


def test_a_tuple_key_reaches_a_plugin(supervisor, paths):
    sup = supervisor(paths.own)
    assert sup.call("hostpy", "echo", {(1, 2): "x"}) == {(1, 2): "x"}


@pytest.mark.parametrize("args, kwargs, error, message", [
    (({1, 2},), {}, TypeError, "argument 1: cannot send set"),
    ((1, [0, [object()]]), {}, TypeError, r"argument 2, at \[1\]\[0\]: cannot send object"),
    (({"k": [1, 2j]},), {}, TypeError, r"argument 1, at \['k'\]\[1\]: cannot send complex"),
    (({frozenset(): 1},), {}, TypeError, "argument 1, at <key>: cannot send frozenset"),
    ((), {"x": {1}}, TypeError, "keyword argument 'x': cannot send set"),
    ((2**63,), {}, OverflowError, "argument 1: cannot send int: outside the signed 64-bit range"),
    ((-(2**63) - 1,), {}, OverflowError, "argument 1: cannot send int"),
    (([2**100],), {}, OverflowError, r"argument 1, at \[0\]: cannot send int"),
    (("\udc80",), {}, ValueError, "argument 1: cannot send a str that is not valid Unicode"),
    ((nested(64),), {}, ValueError, "argument 1, at (\\[0\\]){63}: cannot send a value nested deeper than 63"),
    ((print,), {}, TypeError, "argument 1: cannot send builtin_function_or_method"),
])
def test_unsendable_values_are_refused_before_anything_is_sent(echo, args, kwargs, error, message):
    with pytest.raises(error, match=message):
        echo.call("echo", "echo_all", *args, **kwargs)
    assert echo.state("echo") == "stopped"
    assert worker_pids() == []


def test_strings_with_u0000_round_trip(echo):
    """U+0000 is a character like any other in a str, a dict key, a kwarg
    value, and in what the plugin returns."""
    values = ["a\0b", "\0", "", {"k\0": "v\0", "k": ["\0\0"]}]
    assert echo.call("echo", "echo", values) == values
    assert echo.call("echo", "echo_all", "x\0", key="y\0") == {"args": ["x\0"], "kwargs": {"key": "y\0"}}


def test_a_value_that_contains_itself_is_refused(echo):
    loop = []
    loop.append(loop)
    with pytest.raises(ValueError, match="nested deeper than 63"):
        echo.call("echo", "echo", loop)


def test_names_must_be_strings(echo):
    with pytest.raises(TypeError):
        echo.call(b"echo", "echo", 1)
    with pytest.raises(ValueError, match="NUL"):
        echo.call("echo", "ec\0ho", 1)


def test_a_call_larger_than_a_frame_is_a_bad_request(echo):
    with pytest.raises(plugbox.BadRequest, match="larger than a frame") as info:
        echo.call("echo", "echo", b"\0" * (17 << 20))
    assert isinstance(info.value, ValueError)
    assert echo.call("echo", "echo", b"\0" * (1 << 20)) == b"\0" * (1 << 20)
