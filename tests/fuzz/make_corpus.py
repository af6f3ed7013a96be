#!/usr/bin/python3
"""Write the seed corpora of the libFuzzer targets (tests/fuzz/corpus/TARGET/).

The files are committed; run this again only to change them:
    /usr/bin/python3 tests/fuzz/make_corpus.py [OUTDIR]    (default: tests/fuzz/corpus)
Frames and envelopes are encoded with tests/integration/pbwire.py (the wire
format by hand, as Debian's Python has no protobuf module), plus the few
messages a client never sends (Log, HostCall, Violation...). The policy seeds
are the shipped policies and the test suite's, and a few more that reach
the rest of the language.
"""

import math
import os
import pathlib
import shutil
import struct
import sys

HERE = pathlib.Path(__file__).resolve().parent
TOP = HERE.parent.parent
sys.path.insert(0, str(TOP / "tests" / "integration"))

import pbwire  # noqa: E402
from pbwire import _double_field, _key, _len_field, _var_field, _varint  # noqa: E402


# ---- envelopes ------------------------------------------------------------------

def value_map(pairs):
    """A map with any keys (pbwire's dict encoding needs hashable ones)."""
    entries = b"".join(_len_field(1, _len_field(1, pbwire.encode_value(k)) +
                                  _len_field(2, pbwire.encode_value(v))) for k, v in pairs)
    return _len_field(8, entries)


def raw_value(encoded):
    """Marks an already encoded Value, for encode() below."""
    return ("raw", encoded)


def encode(v):
    if isinstance(v, tuple) and len(v) == 2 and v[0] == "raw":
        return v[1]
    return pbwire.encode_value(v)


def nested_list(depth):
    v = pbwire.encode_value(0)
    for _ in range(depth - 1):
        v = _len_field(7, _len_field(1, v))
    return v


def nested_map(depth):
    v = pbwire.encode_value("leaf")
    for _ in range(depth - 1):
        v = _len_field(8, _len_field(1, _len_field(1, pbwire.encode_value("k")) + _len_field(2, v)))
    return v


EVERY_KIND = [
    None, True, False, 0, 1, -1, 2**63 - 1, -2**63, 1.5, -0.0, 5e-324, 1.7976931348623157e308,
    math.nan, math.inf, -math.inf, "", "héllo wörld ☃ 𝄞", "quote \" backslash \\ \n\t\x01",
    b"", b"\x00\xff\x80binary", [], [1, "two", [3.0, [None]]], {}, {"a": 1, "b": [True, {"c": b"x"}]},
    {1: "int key", 2.5: "float key", b"k": "bytes key", None: "null key"},
    raw_value(value_map([([1, 2], "list key"), ({"m": 1}, "map key")])),
    raw_value(value_map([("dup", 1), ("dup", 2)])),
    {"$bytes": "not base64 but a plain key"},
    {"$float": "nan"}, {"$map": []},
    raw_value(_var_field(1, 0)),           # null with its ignored bool false
]


def call(plugin, function, args=(), kwargs=(), timeout=0.0):
    out = _len_field(1, function.encode())
    out += b"".join(_len_field(2, encode(a)) for a in args)
    for name, value in kwargs:
        out += _len_field(3, _len_field(1, name.encode()) + _len_field(2, encode(value)))
    out += _len_field(4, plugin.encode())
    if timeout:
        out += _double_field(5, float(timeout))
    return out


def env(id, body, payload):
    return pbwire.envelope(id, body, payload)


def hello(version=1, plugin="plug1", layers=("seccomp", "namespaces")):
    out = _var_field(1, version) + _len_field(2, plugin.encode()) + _len_field(3, b"package")
    out += _len_field(4, b"1.0") + _len_field(5, b"greet") + _len_field(5, b"add")
    out += _len_field(6, _len_field(1, b"plugbox.plugins") + _len_field(2, b"p") + _len_field(3, b"m:f"))
    out += _len_field(7, b"/plugbox/import/plug1")
    out += b"".join(_len_field(8, layer.encode()) for layer in layers)
    return out


def error(kind, message, type_="", traceback=""):
    out = _var_field(1, kind)
    if type_:
        out += _len_field(2, type_.encode())
    out += _len_field(3, message.encode())
    if traceback:
        out += _len_field(4, traceback.encode())
    return out


def log(level, logger, message):
    """Strings may be given as bytes, to write what UTF-8 forbids."""
    def raw(s):
        return s if isinstance(s, bytes) else s.encode()
    return _var_field(1, level) + _len_field(2, raw(logger)) + _len_field(3, raw(message))


def host_call(name, args=(), kwargs=()):
    out = _len_field(1, name.encode())
    out += b"".join(_len_field(2, encode(a)) for a in args)
    for k, v in kwargs:
        out += _len_field(3, _len_field(1, k.encode()) + _len_field(2, encode(v)))
    return out


def violation(nr, arch, args, traceback):
    packed = b"".join(_varint(a) for a in args)
    return _var_field(1, nr) + _var_field(2, arch) + _len_field(3, packed) + _len_field(4, traceback.encode())


ENVELOPES = {
    "hello": env(0, "hello", hello()),
    "hello_minimal": env(0, "hello", _var_field(1, 1)),
    "call_every_kind": env(1, "call", call("plug1", "echo", EVERY_KIND)),
    "call_kwargs": env(2, "call", call("plug1", "greet", ["world"], [("loud", True), ("times", 3),
                                                                   ("extra", {"x": [1, 2]})], 2.5)),
    "call_no_args": env(3, "call", call("", "f")),
    "result_int": env(4, "result", _len_field(1, pbwire.encode_value(42))),
    "result_map": env(5, "result", _len_field(1, pbwire.encode_value({"a": [1, 2.5, "s", b"b", None]}))),
    "result_nan": env(6, "result", _len_field(1, pbwire.encode_value(math.nan))),
    "result_nested64": env(7, "result", _len_field(1, nested_list(64))),
    "result_nested65": env(7, "result", _len_field(1, nested_list(65))),
    "result_map_nested": env(8, "result", _len_field(1, nested_map(40))),
    "error": env(9, "error", error(1, "division by zero", "ZeroDivisionError",
                                  "Traceback (most recent call last):\n  File \"x.py\", line 1\n")),
    "error_bad_request": env(0, "error", error(9, "a call needs a non-zero id")),
    # a class name past pb_error_cut's 1 KiB, an e-acute across the mark
    "error_long_type": env(9, "error", error(1, "boom", "T" + "\u00e9" * 600)),
    "log": env(0, "log", log(30, "plug1.sub", "careful ☃")),
    "host_call": env(10, "host_call", host_call("lookup", ["key", 7], [("default", None)])),
    "host_result_value": env(10, "host_result", _len_field(1, pbwire.encode_value([1, "x"]))),
    "host_result_error": env(10, "host_result", _len_field(2, error(1, "no such key", "KeyError"))),
    "shutdown": env(0, "shutdown", b""),
    "violation": env(0, "violation", violation(59, 0xC000003E, [1, 2**64 - 1, 0, 3, 4, 5],
                                                "  File \"p.py\", line 3, in f\n")),
    "listener": env(0, "listener", b""),
    # edge cases
    "empty": b"",
    "id_only": _var_field(1, 5),
    "unknown_field": _var_field(1, 5) + _var_field(99, 1),
    "body_twice": env(0, "shutdown", b"") + _len_field(9, b""),
    "two_bodies": env(0, "shutdown", b"") + _len_field(11, b""),
    "truncated": env(1, "call", call("plug1", "echo", [1, 2, 3]))[:-3],
    "long_varint": _key(1, 0) + b"\xff" * 9 + b"\x01",
    "overlong_varint": _key(1, 0) + b"\xff" * 10 + b"\x01",
    "nul_in_string": env(0, "log", log(20, "a\x00b", "m")),
    "bad_utf8": env(0, "log", log(20, "logger", b"surrogate \xed\xa0\x80")),
    "overlong_utf8": env(0, "log", log(20, b"\xc0\xaf", "m")),
    "value_no_kind": env(4, "result", _len_field(1, b"")),
    "unknown_enum": env(9, "error", error(77, "what kind")),
    "packed_bools": env(0, "violation", _len_field(3, b"\x01\x02\x03")),
}


# ---- frames ----------------------------------------------------------------------

BOUNDS = {"0": 0, "1": 1, "7": 2, "64": 3, "4096": 4, "first-1": 5, "first+1": 6, "16M": 7, "4G": 8}


def frame_input(stream, bound="16M", chunks=(), grow=0, fail_at=0):
    """fuzz_frame's input: the bound and the allocation that fails, the
    chunk sizes and whether the stream is repeated to 96 KiB (grow 1) or
    256 KiB (grow 2), the stream."""
    return bytes([fail_at * len(BOUNDS) + BOUNDS[bound], (grow + 13 if grow else 0) << 4 | len(chunks)]) + \
        bytes(chunks) + stream


def frame(payload):
    return pbwire.frame(payload)


SESSION = b"".join(frame(ENVELOPES[n]) for n in
                   ("hello", "call_every_kind", "result_map", "error", "log", "host_call",
                    "host_result_value", "violation"))

FRAMES = {
    "session_whole": frame_input(SESSION),
    "session_bytewise": frame_input(SESSION, chunks=(1,)),
    "session_uneven": frame_input(SESSION, chunks=(3, 1, 17, 0, 250, 2)),
    "session_bound_64": frame_input(SESSION, "64", (5, 9)),
    "zero_length": frame_input(struct.pack("<I", 0) * 3 + frame(ENVELOPES["shutdown"]), "0"),
    "zero_length_bound_0": frame_input(struct.pack("<I", 0) + struct.pack("<I", 1) + b"x", "0", (1, 2)),
    "length_4g": frame_input(b"\xff\xff\xff\xff" + b"tail bytes", "16M"),
    "length_4g_unbounded": frame_input(b"\xff\xff\xff\xff" + b"tail bytes", "4G", (3,)),
    "length_16m_announced": frame_input(struct.pack("<I", 16 << 20) + b"a few bytes only"),
    "length_16m_plus_1": frame_input(struct.pack("<I", (16 << 20) + 1) + b"x"),
    "first_alloc_edge": frame_input(struct.pack("<I", 65537) + b"y" * 300, "first+1", (0,)),
    "truncated_header": frame_input(b"\x05\x00", "4096"),
    "truncated_payload": frame_input(struct.pack("<I", 10) + b"abc", "4096", (2,)),
    "garbage_payload": frame_input(frame(b"\xff\xfe\xfd\x00garbage"), "4096"),
    # Frames past the first allocation (64 KiB), from a repeated stream.
    "grow_200k": frame_input(struct.pack("<I", 200000) + b"z" * 60, "16M", (0,), 2),
    "grow_exact": frame_input(struct.pack("<I", 256 * 1024 - 4) + b"w" * 60, "16M", (0,), 2),
    "grow_pieces": frame_input(struct.pack("<I", 90000) + b"p" * 28, "16M", (1, 3, 200), 1),
    "grow_bound": frame_input(struct.pack("<I", 65537) + b"b" * 60, "first+1", (2, 0), 1),
    # Allocations failing: the first payload, a growth, every one from the third.
    "nomem_first": frame_input(SESSION, "16M", (7,), 0, 1),
    "nomem_grow": frame_input(struct.pack("<I", 200000) + b"g" * 60, "16M", (0,), 2, 2),
    "nomem_sticky": frame_input(struct.pack("<I", 250000) + b"s" * 60, "16M", (9, 0), 2, 3),
    "deep_value": frame_input(frame(ENVELOPES["result_nested65"]) + frame(ENVELOPES["result_nested64"]),
                              "4096", (7, 0)),
}


# ---- the control socket -------------------------------------------------------------

def serve_input(stream, piece=0):
    """fuzz_serve's input: the write size (0: at once), then what the client sends."""
    return bytes([piece]) + stream


def cf(id, plugin, function, args=(), kwargs=(), timeout=0.0):
    return frame(env(id, "call", call(plugin, function, args, kwargs, timeout)))


CALLS = cf(1, "plug1", "greet", ["world"]) + cf(2, "plug2", "add", [1, 2]) + \
    cf(3, "plug1", "echo", EVERY_KIND, [("k", {"a": 1})], 5.0)

SERVE = {
    "calls": serve_input(CALLS),
    "calls_bytewise": serve_input(CALLS, 1),
    "calls_pieces": serve_input(CALLS, 13),
    # A client that sends the daemon's Hello: a protocol error, then close.
    "hello_then_calls": serve_input(frame(ENVELOPES["hello"]) + CALLS),
    "calls_then_hello": serve_input(CALLS + frame(ENVELOPES["hello"]) + cf(9, "p", "f")),
    "id_zero": serve_input(cf(0, "plug1", "f") + cf(4, "plug1", "f")),
    "duplicate_ids": serve_input(cf(5, "plug1", "f") + cf(5, "plug1", "f") + cf(5, "plug2", "g")),
    "empty_names": serve_input(cf(6, "", "f") + cf(7, "plug1", "") + cf(8, "", "")),
    "bad_plugin_names": serve_input(cf(1, "../etc", "f") + cf(2, ".", "f") + cf(3, "a/b", "f") +
                                    cf(4, "x" * 300, "f")),
    "timeouts": serve_input(cf(1, "p", "f", timeout=-1.0) + cf(2, "p", "f", timeout=math.nan) +
                            cf(3, "p", "f", timeout=math.inf) + cf(4, "p", "f", timeout=1e300) +
                            cf(5, "p", "f", timeout=5e-324)),
    "deep_args": serve_input(cf(1, "p", "f", [raw_value(nested_list(63))]) +
                             cf(2, "p", "f", [raw_value(nested_list(64))]) +
                             cf(3, "p", "f", [], [("k", raw_value(nested_list(64)))])),
    "many_calls": serve_input(b"".join(cf(i, "p", "f", [i]) for i in range(1, 80))),
    "result_body": serve_input(cf(1, "p", "f") + frame(ENVELOPES["result_int"])),
    "oversized_frame": serve_input(cf(1, "p", "f") + struct.pack("<I", (16 << 20) + 1) + b"x"),
    "announced_16m": serve_input(cf(1, "p", "f") + struct.pack("<I", 16 << 20) + b"some"),
    "truncated_at_end": serve_input(cf(1, "p", "f") + cf(2, "p", "g")[:-4]),
    "not_an_envelope": serve_input(frame(b"\x0a\xff\xff\xff\xff\x0f")),
    "zero_length_frame": serve_input(struct.pack("<I", 0) + cf(1, "p", "f")),
    "empty": serve_input(b""),
    # Protocol version 2: asked for, then List and Describe; and before it.
    "v2_list_describe": serve_input(pbwire.hello_frame(2) + pbwire.list_frame(1) + pbwire.describe_frame(2, "p") +
                                    pbwire.describe_frame(3, "") + pbwire.describe_frame(0, "p") + cf(4, "p", "f")),
    "v2_before_hello": serve_input(pbwire.list_frame(1) + pbwire.hello_frame(2) + pbwire.describe_frame(2, "p")),
    "hello_versions": serve_input(pbwire.hello_frame(0) + pbwire.hello_frame(99) + pbwire.hello_frame(1)),
    # Unknown fields, everywhere a client could put them, and bodies not known.
    "unknown_fields": serve_input(
        frame(_var_field(1, 1) + _len_field(3, call("p", "f", [], (), 0.0) + pbwire.unknown_fields()) +
              pbwire.unknown_fields()) +
        frame(_var_field(1, 2) + _len_field(99, b"future")) +
        frame(_var_field(1, 3) + _key(1000, 3)) + cf(4, "p", "f")),
    "bad_messages": serve_input(
        frame(_var_field(1, 1) + _len_field(3, _len_field(1, b"f") + _len_field(2, b"") + _len_field(4, b"p"))) +
        cf(2, "p", "f\0g") + frame(_var_field(1, 3) + _len_field(9, b"")) + cf(4, "p", "f")),
    # Hooks, cancels, output and host functions (version 2): asked of an
    # empty plugins directory, and malformed.
    "v2_hooks": serve_input(
        pbwire.hello_frame(2, stream_output=True, stream_idle_output=True) +
        pbwire.hook_frame(1, "g") + pbwire.hook_frame(2, "g", allow_unknown=True, first_result=True) +
        pbwire.hook_frame(3, "", args=[1]) + pbwire.hook_frame(4, "g", order="given") +
        pbwire.hook_frame(5, "g", plugins=["p", "q"], kwargs={"k": 1}, timeout=-1.0) +
        pbwire.hook_frame(6, "a:b", allow_unknown=True) + pbwire.hook_frame(0, "g", allow_unknown=True) +
        frame(_var_field(1, 7) + _len_field(24, _len_field(1, b"g") + _var_field(9, 7)))),
    "v2_cancel": serve_input(
        pbwire.hello_frame(2) + cf(1, "p", "f") + pbwire.cancel_frame(1) + pbwire.cancel_frame(0, id=3) +
        pbwire.hook_frame(2, "g", allow_unknown=True) + pbwire.cancel_frame(2) + pbwire.cancel_frame(77) +
        pbwire.cancel_frame(2) + cf(2, "p", "f")),
    "v2_host_functions": serve_input(
        pbwire.hello_frame(2) + pbwire.host_functions_frame(1, ["who", "recurse"]) +
        pbwire.host_functions_frame(2, ["who", "1bad"]) + pbwire.host_functions_frame(0, ["x"]) +
        pbwire.host_functions_frame(3, ["n%d" % i for i in range(300)]) +
        pbwire.host_result_frame(1, value=1) + pbwire.host_result_frame(0, error=("KeyError", "k")) +
        pbwire.host_result_frame(5) + cf(4, "p", "f") +
        frame(_var_field(1, 5) + _len_field(3, call("p", "f", [], (), 0.0) + _var_field(6, 9)))),
    "v1_new_bodies": serve_input(pbwire.hook_frame(1, "g") + pbwire.cancel_frame(1) +
                                 pbwire.host_functions_frame(2, ["a"]) + pbwire.host_result_frame(3, value=None)),
}


# ---- policies -------------------------------------------------------------------------

def policy_files():
    """(name, text) of the real policies, then some written for the fuzzer."""
    out = []
    for d in (TOP / "policies", TOP / "examples" / "policies"):
        for p in sorted(d.glob("*.policy")):
            out.append((f"{d.parent.name}_{p.stem}" if d.parent != TOP else p.stem, p.read_bytes()))
    for p in sorted((TOP / "tests" / "policies").glob("*/*.policy")):
        out.append((f"tests_{p.parent.name}_{p.stem}", p.read_bytes()))
    floor = b"read: 1\nwrite: 1\nrt_sigreturn: 1\nexit_group: 1\n"
    more = {
        "conditions": floor + b"@default trap EPERM\n"
        b"ioctl: arg1 == FIONREAD || arg1 == TCGETS\n"
        b"socket: arg0 == AF_UNIX && arg1 & SOCK_STREAM; return EACCES\n"
        b"openat: arg2 & O_WRONLY|O_RDWR => return EROFS\n"
        b"openat: arg2 in O_RDONLY|O_CLOEXEC|O_DIRECTORY\n"
        b"kill: arg0 == SELF_PID && arg1 != 0; kill\n"
        b"mmap: arg2 & ~(PROT_READ|PROT_WRITE) => trap\n"
        b"lseek: arg1 >= 0x10 && arg1 < 010 || arg2 <= -1 => log\n"
        b"prctl: arg0 > PR_SET_NAME; trap ENOSYS\n",
        "groups": floor + b"@default errno EPERM\n@basic-io: 1\n@file-read: allow\n@memory: 1\n"
        b"@threads: log\n@time: 1\n@debug: kill\n@mount: return EPERM\n",
        "after_start": b"@include default\n@after-start\nopenat: return EACCES\nsocket: trap\n@network-client: kill\n",
        "sandbox": b"@include default\n@limit memory 512M\n@limit cpu 10s\n@limit files 64\n"
        b"@limit call-time 1500\n@layer landlock required\n@network host\n@scratch 16M\n"
        b"@host-call lookup fetch_key\n@host-call store\n",
        "sandbox_jail": b"@include default\n@scratch 16M inodes=512\n@proc off\n@network none\n",
        "network_connect": b"@include default\n@network connect 127.0.0.1:8080\n@network connect [::1]:80\n"
        b"@network connect localhost:443\n@network refresh 5m\n",
        # A host longer than a name may be, in a token that holds it: parse_dest
        # copied it past its buffer on the stack.
        "network_connect_long": b"@include default\n@network connect " + b"a" * 250 + b"b" * 14 + b":80\n"
        b"@network connect [" + b"1" * 263 + b"]:80\n",
        "errors": b"@include ../etc/passwd\n@include nosuch\n@default allow\nread: 1\nread: 1\n"
        b"opneat: 1\n@basic-oi: 1\nioctl: arg7 == 1\nioctl: arg1 === 2\nwrite: return EWHAT\n"
        b"@limit memory lots\n@layer seccomp off\n@host-call 9bad\n@after-start\n@after-start\nread: log\n",
        "multi_file": b"@include a\nread: 1\n\0@include b\nwrite: 1\nrt_sigreturn: 1\n\0"
        b"exit_group: 1\n@default kill\n",
        "include_cycle": b"@include a\n\0@include b\n\0@include fuzz\n",
        "nul_byte": b"read: 1\n\0\0\0write: 1\0more\n",
        "long_line": floor + b"ioctl: " + b" || ".join(b"arg1 == %d" % i for i in range(600)) + b"\n",
        "comments_and_blanks": b"# only a comment\n\n   \t\n" + floor + b"  # indented comment\r\n",
    }
    out += sorted(more.items())
    # The controls after a third NUL: allocation N fails (and, sticky, every
    # one after it); bytes past the first two go into fuzz.policy after a NUL.
    default = (TOP / "policies" / "strict.policy").read_bytes()
    for n, sticky in ((1, 0), (3, 1), (9, 0), (40, 0), (120, 1), (250, 0)):
        out.append((f"nomem_{n}{'_on' if sticky else ''}", default + b"\0\0\0" + bytes([n, sticky])))
    out.append(("nomem_sandbox", more["sandbox"] + b"\0\0\0" + bytes([30, 0])))
    out.append(("nomem_multi_file", more["multi_file"] + b"\0" + bytes([7, 1])))
    out.append(("nul_via_controls", floor + b"\0\0\0" + b"\0\0read: 1\n"))
    return out


POLICY_DICT = [
    "@include", "@default", "@after-start", "@limit", "@layer", "@network", "@scratch", "@host-call",
    "connect", "refresh", "[::1]:80", "127.0.0.1:8080",
    "@proc", "inodes=", "on",
    "@include default", "@include python", "@include a", "@include b", "@include fuzz",
    "arg0", "arg1", "arg2", "arg3", "arg4", "arg5", "==", "!=", "<", "<=", ">", ">=", "&", " in ",
    "&&", "||", "=>", ";", ":", "~", "|", "(", ")", "0x", "SELF_PID",
    "allow", "kill", "log", "trap", "return", "errno", "enosys", "1",
    "EACCES", "EPERM", "ENOSYS", "EROFS", "4095", "4096",
    "O_WRONLY", "O_RDWR", "O_CREAT", "AF_UNIX", "AF_INET", "SOCK_STREAM", "PROT_EXEC",
    "MAP_SHARED", "CLONE_THREAD", "F_SETFL", "FIONREAD", "TCGETS", "PR_SET_NAME", "SIGKILL",
    "read", "write", "openat", "ioctl", "socket", "mmap", "mprotect", "clone", "clone3", "kill",
    "prctl", "seccomp", "sendmsg", "rt_sigaction", "rt_sigreturn", "exit_group", "ptrace",
    "@basic-io", "@file-read", "@file-write", "@memory", "@threads", "@time", "@identity",
    "@signals", "@event-loop", "@python-runtime", "@network-client", "@network-server",
    "@process", "@debug", "@mount", "@namespaces", "@setuid", "@keyring", "@io-uring",
    "@module", "@system-admin", "@raw-io", "@kernel-attack-surface", "@sandbox",
    "memory", "address-space", "cpu", "files", "processes", "file-size", "core", "call-time",
    "namespaces", "landlock", "required", "optional", "off", "none", "host", "connect", "[::1]:", "127.0.0.1:", "localhost:443", "refresh", "5m",
    "unlimited", "1G", "16M", "64K", "60s", "1500",
]


# ---- helper answers (fuzz_answer): the job byte, then what fd 4 said ----------------

def answer(text, probes=False, mode=0, named=False, status=0):
    job = (1 if probes else 0) | mode << 1 | (8 if named else 0) | status << 4
    return bytes([job]) + text.encode()


ANSWERS = {
    "ok": answer("ok\tdemo\t1.0\t0\n"),
    "ok_named": answer("ok\tdemo\t1.0\t3\n", named=True),
    "ok_wrong_name": answer("ok\tother\t1.0\t0\n", named=True),
    "ok_bad_exit": answer("ok\tdemo\t1.0\t0\n", status=1),
    "version": answer("version\t2.0 beta\n", mode=2),
    "refused": answer("refused\tnot a wheel: bad zip\n", status=2),
    "failed": answer("failed\tdisk full\n", status=1),
    "probes": answer("probe\tw:/etc/x\tEACCES\nprobe\tr:@staging/a\tok\nok\tdemo\t1\t0\n", probes=True),
    "probes_not_asked": answer("probe\tw:/etc/x\tEACCES\nok\tdemo\t1\t0\n"),
    "compiler_ok": answer("ok\t12\t3\n"),
    "two_lines": answer("ok\tdemo\t1\t0\nfailed\tno\n"),
    "no_newline": answer("ok\tdemo\t1\t0"),
    "nul": answer("ok\tde\0mo\t1\t0\n"),
    "controls": answer("failed\t\x1b[31mred\xc2\x9b\n", status=1),
    "empty": answer(""),
}


def scan_answer(*envelopes, plugins=0):
    """The discovery scan's answer (byte 0 bit 7; plugins 0 means 3)."""
    return bytes([0x80 | plugins]) + b"".join(len(e).to_bytes(4, "little") + e for e in envelopes)


def scan_hello(plugin, priority=0):
    out = _var_field(1, 1) + _len_field(2, plugin.encode()) + _len_field(3, b"path") + _len_field(4, b"1.0")
    out += _len_field(6, _len_field(1, b"demo.hooks") + _len_field(2, b"run") + _len_field(3, b"m:f"))
    if priority:
        out += _var_field(9, priority * 2 if priority > 0 else -priority * 2 - 1)   # sint32
    return out


ANSWERS.update({
    "scan_ok": scan_answer(env(1, "hello", scan_hello("a")), env(2, "error", error(3, "bad plugin.toml")),
                           env(3, "hello", scan_hello("demo", priority=-5))),
    "scan_one": scan_answer(env(1, "hello", scan_hello("a", priority=7)), plugins=1),
    "scan_wrong_name": scan_answer(env(1, "hello", scan_hello("b")), plugins=1),
    "scan_wrong_id": scan_answer(env(2, "hello", scan_hello("a")), plugins=1),
    "scan_short": scan_answer(env(1, "hello", scan_hello("a")), plugins=2),
    "scan_trailing": scan_answer(env(1, "hello", scan_hello("a")), plugins=1) + b"\0",
    "scan_call": scan_answer(env(1, "call", call("a", "f")), plugins=1),
})


def write_dict(path, words):
    with open(path, "w") as f:
        f.write("# Tokens of the policy language, for libFuzzer's -dict (written by make_corpus.py).\n")
        for w in words:
            f.write('"' + w.replace("\\", "\\\\").replace('"', '\\"') + '"\n')


# ---- plugin text (fuzz_sanitize: a byte of flags and room, then the text) ----

SANITIZE = {
    "plain": b"\xff" + "plain text, caf\u00e9, \u65e5\u672c\n".encode(),
    "escapes": b"\x01\x1b[31mred\x1b[0m\r\x07\x7f\tend",
    "c1": b"\x00" + "\u009b31m\u0085".encode() + b"\xc2",
    "bidi": b"\x41" + "a\u202eb\u2066c\u2069\u200f\u061c\u2028".encode(),
    "invalid": b"\x11\x80\xc0\xaf\xe0\x80\x9b\xed\xa0\x80\xf4\x90\x80\x80\xe2\x80A",
    "newlines": b"\x03" + b"\n" * 300,
    # room 8: a cut at 7 bytes falls inside the e-acute (pb_utf8_cut)
    "cut_inside_char": b"\x0e" + "abcdef\u00e9\u20ac".encode(),
}


# ---- connect addresses (fuzz_sockaddr: a count, the allowed addresses, the sockaddr) ----

def _allowed(entries):
    out = bytes([len(entries)])
    for family6, addr, port in entries:
        out += bytes([1 if family6 else 0]) + addr.ljust(16, b"\0") + struct.pack(">H", port)
    return out


def _sin(addr, port, family=2):
    return struct.pack("=H", family) + struct.pack(">H", port) + addr + b"\0" * 8


def _sin6(addr, port, scope=0, family=10):
    return struct.pack("=H", family) + struct.pack(">H", port) + b"\0" * 4 + addr + struct.pack("=I", scope)


LOOP4 = bytes([127, 0, 0, 1])
LOOP6 = bytes(15) + b"\1"
MAPPED = bytes(10) + b"\xff\xff" + LOOP4
LISTED = _allowed([(False, LOOP4, 8080), (True, LOOP6, 8443)])

SOCKADDR = {
    "v4_allowed": LISTED + _sin(LOOP4, 8080),
    "v4_other_port": LISTED + _sin(LOOP4, 8081),
    "v4_other_host": LISTED + _sin(bytes([127, 0, 0, 2]), 8080),
    "v6_allowed": LISTED + _sin6(LOOP6, 8443),
    "v6_short_form": LISTED + _sin6(LOOP6, 8443)[:24],
    "v6_mapped": LISTED + _sin6(MAPPED, 8080),
    "v4_short": LISTED + _sin(LOOP4, 8080)[:15],
    "v6_short": LISTED + _sin6(LOOP6, 8443)[:23],
    "unix": LISTED + struct.pack("=H", 1) + b"/run/docker.sock\0",
    "unspec": LISTED + struct.pack("=H", 0) + bytes(14),
    "family_only": LISTED + struct.pack("=H", 2),
    "empty": bytes([0]),
    "storage": LISTED + _sin6(LOOP6, 8443) + bytes(128 - 28),
}


def main():
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "corpus"
    sets = {
        "fuzz_envelope": ENVELOPES,
        "fuzz_frame": FRAMES,
        "fuzz_serve": SERVE,
        "fuzz_policy": dict(policy_files()),
        "fuzz_answer": ANSWERS,
        "fuzz_sanitize": SANITIZE,
        "fuzz_sockaddr": SOCKADDR,
    }
    for target, seeds in sets.items():
        d = out / target
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        for name, data in seeds.items():
            (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())
    write_dict(HERE / "fuzz_policy.dict", POLICY_DICT)
    print(f"wrote {sum(len(s) for s in sets.values())} seeds under {out}")


if __name__ == "__main__":
    main()
