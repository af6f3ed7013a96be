"""Values across the boundary: each ARG_JSON becomes one Python positional
argument, the return value comes back as one line of JSON.

Convention: null/bool/int/float/string/list/object <-> None/bool/int/float/
str/list/dict; bytes <-> {"$bytes": base64}; nan/inf/-inf <->
{"$float": "nan"|"inf"|"-inf"}; dicts with non-string keys <->
{"$map": [[key, value], ...]}; tuples come back as lists."""

import base64
import json
import math

import pytest

from pbtest import EXIT_OK, assert_one_error_line, explain, result_of


@pytest.fixture
def echo(plugbox, paths):
    def call(function, *args):
        return plugbox.call_ok(paths.features, "echo", function, *args)
    return call


@pytest.mark.parametrize("arg, expected_repr", [
    ("null", "None"),
    ("true", "True"),
    ("false", "False"),
    ("0", "0"),
    ("-5", "-5"),                       # starts with '-': must not be taken for an option
    ("42", "42"),
    ("9223372036854775807", "9223372036854775807"),
    ("-9223372036854775808", "-9223372036854775808"),
    ("1.0", "1.0"),                     # a float, not the int 1
    ("-1.5e3", "-1500.0"),
    ("0.1", "0.1"),
    ('"text"', "'text'"),
    ('""', "''"),
    ("[]", "[]"),
    ("[1, [2, 3]]", "[1, [2, 3]]"),     # lists, not tuples
    ("{}", "{}"),
    ('{"a": 1, "b": [null]}', "{'a': 1, 'b': [None]}"),
    ('{"$bytes": "AAEC/w=="}', r"b'\x00\x01\x02\xff'"),
    ('{"$bytes": ""}', "b''"),
    ('{"$float": "nan"}', "nan"),
    ('{"$float": "inf"}', "inf"),
    ('{"$float": "-inf"}', "-inf"),
    ('{"$map": [[1, "one"], [null, "none"], [2.5, "f"]]}', "{1: 'one', None: 'none', 2.5: 'f'}"),
    ('{"$map": [[{"$bytes": "aw=="}, 1]]}', "{b'k': 1}"),
    ('[{"$bytes": "eA=="}, {"x": {"$float": "inf"}}]', "[b'x', {'x': inf}]"),
])
def test_json_argument_becomes_python_value(echo, arg, expected_repr):
    assert echo("pyrepr", arg) == [expected_repr]


def test_several_arguments_are_positional(echo):
    assert echo("echo_all", "1", '"two"', "[3]", "-4") == {"args": [1, "two", [3], -4], "kwargs": {}}


def test_no_arguments(echo):
    assert echo("echo_all") == {"args": [], "kwargs": {}}


@pytest.mark.parametrize("arg", [
    "null", "true", "false", "0", "-5", "123456789012", "-0.5", "1e+300", "5e-324",
    '"plain"', '"日本語 café 😀 Ω"', '"tab\\tnewline\\nquote\\"backslash\\\\"',
    "[1, 2.5, null, true, \"s\"]", '{"nested": {"list": [[], {}], "n": -1}}',
])
def test_plain_json_round_trips(echo, arg):
    assert echo("echo", arg) == json.loads(arg)


@pytest.mark.parametrize("arg", [
    '{"$bytes": "AAEC/w=="}',
    '{"$bytes": ""}',
    '{"$float": "nan"}',
    '{"$float": "inf"}',
    '{"$float": "-inf"}',
    '{"$map": [[1, "one"], [2, "two"]]}',
    '[{"$bytes": "eA=="}, {"k": {"$float": "-inf"}}]',
])
def test_tagged_values_round_trip(echo, arg):
    assert echo("echo", arg) == json.loads(arg)


def test_float_types_survive(echo):
    value = echo("make", '"one_float"')
    assert value == 1.0 and isinstance(value, float)
    neg_zero = echo("make", '"neg_zero"')
    assert neg_zero == 0.0 and isinstance(neg_zero, float) and math.copysign(1, neg_zero) == -1


def test_floats_print_shortest_round_trip(plugbox, paths):
    cp = plugbox.call(paths.features, "echo", "make", '"tenth"')
    assert cp.returncode == EXIT_OK, explain(cp)
    assert cp.stdout == "0.1\n"


def test_int64_limits_returned(echo):
    assert echo("make", '"int64_max"') == 2**63 - 1
    assert echo("make", '"int64_min"') == -(2**63)


def test_tuple_returns_as_list(echo):
    assert echo("make", '"tuple"') == [1, "two", None, [3.5, True]]


def test_bytes_returned_as_base64(echo):
    value = echo("make", '"bytes"')
    assert set(value) == {"$bytes"}
    assert base64.b64decode(value["$bytes"], validate=True) == b"\x00\x01\x02\xffplug"
    assert echo("make", '"empty_bytes"') == {"$bytes": ""}


@pytest.mark.parametrize("kind", ["nan", "inf", "-inf"])
def test_non_finite_floats_returned_tagged(echo, kind):
    assert echo("make", json.dumps(kind)) == {"$float": kind}


def test_int_keyed_dict_returned_as_map(echo):
    value = echo("make", '"int_keys"')
    assert set(value) == {"$map"}
    assert sorted(value["$map"]) == [[1, "one"], [2, "two"]]


def test_mixed_keys_returned_as_map(echo):
    value = echo("make", '"mixed_keys"')
    assert set(value) == {"$map"}
    entries = {json.dumps(k, sort_keys=True): v for k, v in value["$map"]}
    assert entries == {
        '"a"': 1, "2": "b", "null": "n", "2.5": "f",
        json.dumps({"$bytes": base64.b64encode(b"k").decode()}): "bytes key",
    }


def test_string_keyed_dict_is_a_plain_object(echo):
    assert echo("make", '"str_keys"') == {"a": 1, "b": [1, 2]}
    # A $map whose keys are all strings is just a dict on the Python side.
    assert echo("echo", '{"$map": [["a", 1]]}') == {"a": 1}


def test_unicode_and_control_characters_returned(plugbox, paths, echo):
    assert echo("make", '"unicode"') == "日本語 café 😀 Ω"
    cp = plugbox.call(paths.features, "echo", "make", '"control"')
    assert result_of(cp) == 'line1\nline2\t"quoted" back\\slash \x01 end'


def test_scalars_and_empty_containers(echo):
    assert echo("make", '"scalars"') == [True, False, None, 0, -1, 1.5, ""]
    assert echo("make", '"empty"') == [[], {}, [], ""]


def test_large_result(echo):
    assert echo("make_string", "1000000") == "x" * 1_000_000


def test_large_argument(echo):
    numbers = list(range(-5000, 5000))
    assert echo("echo", json.dumps(numbers)) == numbers


def _nested(depth):
    return "[" * depth + "]" * depth


def test_nesting_60_round_trips(echo):
    value = echo("echo", _nested(60))
    depth = 0
    while isinstance(value, list) and value:
        assert len(value) == 1
        value, depth = value[0], depth + 1
    assert value == [] and depth == 59
    assert echo("make", '"deep60"') == json.loads(_nested(60))


def test_argument_nested_100_deep_is_refused(plugbox, paths):
    cp = plugbox.call(paths.features, "echo", "echo", _nested(100))
    assert_one_error_line(cp, "argument 1")


@pytest.mark.parametrize("bad", [
    '{"$bytes": "not base64!"}',
    '{"$bytes": 5}',
    '{"$float": "banana"}',
    '{"$map": 5}',
    '{"$map": [[1]]}',
])
def test_malformed_tagged_argument_is_refused(plugbox, paths, bad):
    cp = plugbox.call(paths.features, "echo", "echo_all", "1", bad)
    assert_one_error_line(cp, "argument 2")


def test_strings_may_contain_u0000(plugbox, paths, echo):
    """U+0000 is valid JSON, a valid Python str and a valid protobuf string:
    it crosses whole, both ways, in values and in map keys (written with
    "$map", since a JSON object key cannot hold it)."""
    assert echo("pyrepr", '"a\\u0000b"') == ["'a\\x00b'"]
    cp = plugbox.call(paths.features, "echo", "echo", '"a\\u0000b"')
    assert (cp.returncode, cp.stdout) == (EXIT_OK, '"a\\u0000b"\n'), explain(cp)
    assert echo("echo", '["\\u0000", "", "x\\u0000\\u0000"]') == ["\0", "", "x\0\0"]
    cp = plugbox.call(paths.features, "echo", "echo", '{"$map": [["k\\u0000", "v\\u0000"]]}')
    assert (cp.returncode, cp.stdout) == (EXIT_OK, '{"$map":[["k\\u0000","v\\u0000"]]}\n'), explain(cp)
    assert echo("pyrepr", '{"$map": [["k\\u0000", 1]]}') == ["{'k\\x00': 1}"]
