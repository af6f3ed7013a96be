"""echo: value round-trips between the command line's JSON and Python.

echo(value) returns its argument unchanged; echo_all(*args, **kwargs) shows
everything the call delivered; pyrepr(*args) returns repr() of each argument
so a test can see exactly which Python object the JSON became; make(kind)
returns Python objects that JSON has no literal for (tuples, bytes, nan, dicts
with non-string keys, ...)."""

import plugbox


@plugbox.export
def echo(value):
    return value


@plugbox.export
def echo_all(*args, **kwargs):
    return {"args": list(args), "kwargs": kwargs}


@plugbox.export
def pyrepr(*args):
    return [repr(a) for a in args]


def _nested(depth):
    value = []
    for _ in range(depth - 1):
        value = [value]
    return value


_SAMPLES = {
    "tuple": lambda: (1, "two", None, (3.5, True)),
    "bytes": lambda: b"\x00\x01\x02\xffplug",
    "empty_bytes": lambda: b"",
    "nan": lambda: float("nan"),
    "inf": lambda: float("inf"),
    "-inf": lambda: float("-inf"),
    "int_keys": lambda: {1: "one", 2: "two"},
    "mixed_keys": lambda: {"a": 1, 2: "b", None: "n", 2.5: "f", b"k": "bytes key"},
    "str_keys": lambda: {"a": 1, "b": [1, 2]},
    "tenth": lambda: 0.1,
    "one_float": lambda: 1.0,
    "neg_zero": lambda: -0.0,
    "int64_max": lambda: 2**63 - 1,
    "int64_min": lambda: -(2**63),
    "unicode": lambda: "日本語 café 😀 Ω",
    "control": lambda: 'line1\nline2\t"quoted" back\\slash \x01 end',
    "scalars": lambda: [True, False, None, 0, -1, 1.5, ""],
    "empty": lambda: [[], {}, (), ""],
    "deep60": lambda: _nested(60),
}


@plugbox.export
def make(kind):
    return _SAMPLES[kind]()


@plugbox.export
def make_string(length):
    return "x" * length
