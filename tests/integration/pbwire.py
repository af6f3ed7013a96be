"""The control protocol of `plugbox serve`, by hand (Debian's Python has no
protobuf module): the few messages of proto/plugbox.proto a client needs,
encoded and decoded in the protobuf wire format, and a small connection.

Values map to Python as None, bool, int, float, str, bytes, list and dict
(a map whose keys are unhashable decodes as a list of (key, value) pairs).
Decoding is bounded: nesting deeper than MAX_DEPTH raises ValueError, as
does anything malformed.
"""

import socket
import struct
import time

FRAME_MAX = 16 * 1024 * 1024
MAX_DEPTH = 70

# Envelope body field numbers, and ErrorKind numbers (= pb_error_kind).
BODIES = {2: "hello", 3: "call", 4: "result", 5: "error", 6: "host_call", 7: "host_result",
          8: "log", 9: "shutdown", 10: "violation", 11: "listener",
          20: "list", 21: "plugins", 22: "describe", 23: "plugin_info",
          24: "hook", 25: "hook_results", 26: "cancel", 27: "output", 28: "host_functions"}
KINDS = {1: "exception", 2: "not_found", 3: "config", 4: "violation", 5: "timeout",
         6: "crashed", 7: "protocol", 8: "unavailable", 9: "bad_request", 10: "cancelled"}
STREAMS = {0: "", 1: "stdout", 2: "stderr", 3: "supervisor", 4: "log"}
HOOK_ORDERS = {"name": 0, "priority": 1, "given": 2}


# ---- encoding -----------------------------------------------------------------

def _varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field, wire):
    return _varint(field << 3 | wire)


def _len_field(field, data):
    return _key(field, 2) + _varint(len(data)) + data


def _var_field(field, n):
    return _key(field, 0) + _varint(n)


def _double_field(field, d):
    return _key(field, 1) + struct.pack("<d", d)


def encode_value(v):
    if v is None:
        return _var_field(1, 1)
    if isinstance(v, bool):
        return _var_field(2, int(v))
    if isinstance(v, int):
        return _var_field(3, (v << 1) ^ (v >> 63))          # sint64: zigzag
    if isinstance(v, float):
        return _double_field(4, v)
    if isinstance(v, str):
        return _len_field(5, v.encode())
    if isinstance(v, (bytes, bytearray)):
        return _len_field(6, bytes(v))
    if isinstance(v, (list, tuple)):
        return _len_field(7, b"".join(_len_field(1, encode_value(x)) for x in v))
    if isinstance(v, dict):
        entries = (_len_field(1, _len_field(1, encode_value(k)) + _len_field(2, encode_value(x)))
                   for k, x in v.items())
        return _len_field(8, b"".join(entries))
    raise TypeError(f"no plugbox value for {type(v).__name__}")


def envelope(id, body, payload):
    """An Envelope with body field `body` (a name of BODIES) holding payload."""
    field = {name: num for num, name in BODIES.items()}[body]
    return (_var_field(1, id) if id else b"") + _len_field(field, payload)


def _arguments(args, kwargs):
    out = b"".join(_len_field(2, encode_value(a)) for a in args)
    for name, value in (kwargs or {}).items():
        out += _len_field(3, _len_field(1, name.encode()) + _len_field(2, encode_value(value)))
    return out


def call_payload(plugin, function, args=(), kwargs=None, timeout=0.0, parent=0):
    out = _len_field(1, function.encode()) + _arguments(args, kwargs)
    out += _len_field(4, plugin.encode())
    if timeout:
        out += _double_field(5, float(timeout))
    if parent:
        out += _var_field(6, parent)
    return out


def frame(payload):
    return struct.pack("<I", len(payload)) + payload


def call_frame(id, plugin, function, args=(), kwargs=None, timeout=0.0, parent=0):
    return frame(envelope(id, "call", call_payload(plugin, function, args, kwargs, timeout, parent)))


def hello_frame(protocol_version, id=0, stream_output=False, stream_idle_output=False):
    payload = _var_field(1, protocol_version)
    if stream_output:
        payload += _var_field(21, 1)
    if stream_idle_output:
        payload += _var_field(22, 1)
    return frame(envelope(id, "hello", payload))


def hook_frame(id, group, args=(), kwargs=None, timeout=0.0, first_result=False, concurrent=False,
               allow_unknown=False, prune_kwargs=False, order="name", plugins=()):
    out = _len_field(1, group.encode()) + _arguments(args, kwargs)
    if timeout:
        out += _double_field(4, float(timeout))
    for field, flag in ((5, first_result), (6, concurrent), (7, allow_unknown), (8, prune_kwargs)):
        if flag:
            out += _var_field(field, 1)
    if HOOK_ORDERS[order]:
        out += _var_field(9, HOOK_ORDERS[order])
    out += b"".join(_len_field(10, p.encode()) for p in plugins)
    return frame(envelope(id, "hook", out))


def cancel_frame(call_id, id=0):
    return frame(envelope(id, "cancel", _var_field(1, call_id)))


def host_functions_frame(id, names):
    return frame(envelope(id, "host_functions", b"".join(_len_field(1, n.encode()) for n in names)))


def host_result_frame(id, value=None, error=None):
    """A HostResult: `value`, or error=(type, message)."""
    if error is not None:
        etype, message = error
        payload = _len_field(2, _var_field(1, 1) + _len_field(2, etype.encode()) + _len_field(3, message.encode()))
    else:
        payload = _len_field(1, encode_value(value))
    return frame(envelope(id, "host_result", payload))


def list_frame(id):
    return frame(envelope(id, "list", b""))


def describe_frame(id, plugin):
    return frame(envelope(id, "describe", _len_field(1, plugin.encode())))


def unknown_fields():
    """Fields no version of the schema has yet, one of each wire type
    protobuf-c can skip: a later client's additions."""
    return (_var_field(1000, 7) + _double_field(1001, 1.5) + _len_field(1002, b"later")
            + _key(1003, 5) + b"\0\0\0\0")


def result_frame(id, value):
    return frame(envelope(id, "result", _len_field(1, encode_value(value))))


# ---- decoding -----------------------------------------------------------------

def _fields(buf):
    """(field, wire type, value) of one message: ints for varint/fixed,
    bytes for length-delimited."""
    i, n = 0, len(buf)

    def varint():
        nonlocal i
        result = shift = 0
        while True:
            if i >= n or shift > 63:
                raise ValueError("truncated or overlong varint")
            b = buf[i]
            i += 1
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return result

    while i < n:
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            yield field, wire, varint()
        elif wire == 1:
            if i + 8 > n:
                raise ValueError("truncated fixed64")
            yield field, wire, buf[i:i + 8]
            i += 8
        elif wire == 2:
            ln = varint()
            if i + ln > n:
                raise ValueError("truncated length-delimited field")
            yield field, wire, buf[i:i + ln]
            i += ln
        elif wire == 5:
            if i + 4 > n:
                raise ValueError("truncated fixed32")
            yield field, wire, buf[i:i + 4]
            i += 4
        else:
            raise ValueError(f"wire type {wire}")


def decode_value(buf, depth=0):
    if depth > MAX_DEPTH:
        raise ValueError("value nested too deeply")
    value, seen = None, False
    for field, wire, data in _fields(buf):
        seen = True
        if field == 1:
            value = None
        elif field == 2:
            value = bool(data)
        elif field == 3:
            value = (data >> 1) ^ -(data & 1)
        elif field == 4:
            value = struct.unpack("<d", data)[0]
        elif field == 5:
            value = bytes(data).decode()
        elif field == 6:
            value = bytes(data)
        elif field == 7:
            value = [decode_value(item, depth + 1) for f, _, item in _fields(data) if f == 1]
        elif field == 8:
            pairs = []
            for f, _, entry in _fields(data):
                if f != 1:
                    continue
                parts = {ef: decode_value(ed, depth + 1) for ef, _, ed in _fields(entry)}
                pairs.append((parts.get(1), parts.get(2)))
            try:
                value = dict(pairs)
            except TypeError:
                value = pairs
        else:
            raise ValueError(f"unknown Value field {field}")
    if not seen:
        raise ValueError("Value with no kind")
    return value


def _strings(data, want):
    return [bytes(d).decode() for f, w, d in _fields(data) if f == want]


def decode_plugin_info(data):
    """PluginInfo -> dict (the fields a version 2 daemon sends)."""
    info = {"name": "", "state": "", "policy_file": "", "layout": "", "version": "", "exports": [],
            "entry_points": [], "sys_path": [], "layers": []}
    names = {1: "name", 2: "state", 3: "policy_file", 4: "layout", 5: "version"}
    lists = {6: "exports", 8: "sys_path", 9: "layers"}
    for f, w, d in _fields(data):
        if f in names:
            info[names[f]] = bytes(d).decode()
        elif f in lists:
            info[lists[f]].append(bytes(d).decode())
        elif f == 7:
            ep = {1: "", 2: "", 3: ""}
            for ef, _, ed in _fields(d):
                ep[ef] = bytes(ed).decode()
            info["entry_points"].append({"group": ep[1], "name": ep[2], "value": ep[3]})
    return info


def decode_error(data):
    """Error -> dict: kind (a name of KINDS), kind_number, type, message,
    traceback, and whichever version 2 fields were sent."""
    env = {"kind_number": 0, "type": "", "message": "", "traceback": ""}
    for f, w, d in _fields(data):
        if f == 1:
            env["kind_number"] = d
        elif 2 <= f <= 4:
            env[{2: "type", 3: "message", 4: "traceback"}[f]] = bytes(d).decode()
        elif f in (20, 21, 23, 24):
            env[{20: "plugin", 21: "syscall", 23: "rule", 24: "policy_file"}[f]] = bytes(d).decode()
        elif f == 22:
            args = env.setdefault("syscall_args", [])
            if w == 2:           # packed
                sub, i = bytes(d), 0
                while i < len(sub):
                    n = shift = 0
                    while True:
                        b = sub[i]
                        i += 1
                        n |= (b & 0x7F) << shift
                        shift += 7
                        if not b & 0x80:
                            break
                    args.append(n)
            else:
                args.append(d)
        elif f == 25:
            env["policy_line"] = d
    env["kind"] = KINDS.get(env["kind_number"], "unknown")
    return env


def _decode_arguments(data, into):
    into.setdefault("args", [])
    into.setdefault("kwargs", {})
    for f, w, d in _fields(data):
        if f == 2:
            into["args"].append(decode_value(d))
        elif f == 3:
            parts = {kf: kd for kf, _, kd in _fields(d)}
            into["kwargs"][bytes(parts.get(1, b"")).decode()] = decode_value(parts[2]) if 2 in parts else None


def decode_envelope(buf):
    """-> dict: id, body (a name of BODIES) and the body's fields:
    hello: protocol_version (and max_protocol_version when sent); result:
    value; error: kind (a name of KINDS), kind_number, type, message,
    traceback, and from a version 2 daemon whichever of plugin, syscall,
    syscall_args, rule, policy_file, policy_line it sent; plugins: a list
    of PluginInfo dicts; plugin_info: a PluginInfo dict. Unknown fields are
    skipped, as protobuf readers do."""
    env = {"id": 0, "body": None}
    for field, wire, data in _fields(buf):
        if field == 1 and wire == 0:
            env["id"] = data
        elif field in BODIES and wire == 2:
            env["body"] = BODIES[field]
            if field == 2:
                env["protocol_version"] = 0
                for f, w, d in _fields(data):
                    if f == 1 and w == 0:
                        env["protocol_version"] = d
                    elif f == 20 and w == 0:
                        env["max_protocol_version"] = d
            elif field == 21:
                env["plugins"] = [decode_plugin_info(d) for f, _, d in _fields(data) if f == 1]
            elif field == 23:
                env["info"] = decode_plugin_info(data)
            elif field == 4:
                for f, w, d in _fields(data):
                    if f == 1:
                        env["value"] = decode_value(d)
            elif field == 5:
                env.update(decode_error(data))
            elif field == 27:
                env.update(call_id=0, plugin="", stream="", text="", level=0, logger="", exc_text="", dropped=0)
                for f, w, d in _fields(data):
                    if f in (1, 5, 8):
                        env[{1: "call_id", 5: "level", 8: "dropped"}[f]] = d
                    elif f == 3:
                        env["stream"] = STREAMS.get(d, str(d))
                    elif f in (2, 4, 6, 7):
                        env[{2: "plugin", 4: "text", 6: "logger", 7: "exc_text"}[f]] = bytes(d).decode()
            elif field == 6:
                env.update(name="", plugin="", call_id=0)
                _decode_arguments(data, env)
                for f, w, d in _fields(data):
                    if f == 1:
                        env["name"] = bytes(d).decode()
                    elif f == 20:
                        env["plugin"] = bytes(d).decode()
                    elif f == 21:
                        env["call_id"] = d
            elif field == 25:
                env["answers"] = []
                for f, _, d in _fields(data):
                    if f != 1:
                        continue
                    a = {"plugin": "", "name": ""}
                    for af, _, ad in _fields(d):
                        if af in (1, 2):
                            a[{1: "plugin", 2: "name"}[af]] = bytes(ad).decode()
                        elif af == 3:
                            a["value"] = decode_value(ad)
                        elif af == 4:
                            a["error"] = decode_error(ad)
                    env["answers"].append(a)
        elif field in (1,) or field in BODIES:
            raise ValueError(f"Envelope field {field} of wire type {wire}")
    return env


# ---- a connection -------------------------------------------------------------

class Closed(Exception):
    """The daemon closed the connection."""


class Conn:
    """One client connection. Connecting reads the Hello (self.hello)."""

    def __init__(self, path, timeout=30.0, read_hello=True):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.buf = b""
        self.hello = self.recv(timeout) if read_hello else None

    def send_raw(self, data):
        self.sock.sendall(data)

    def call(self, id, plugin, function, *args, kwargs=None, timeout=0.0):
        self.send_raw(call_frame(id, plugin, function, args, kwargs, timeout))

    def send_unread(self, data, seconds):
        """Send data without ever reading, for at most `seconds`, as a
        client that stopped reading its answers does: once the daemon stops
        reading it (backpressure) the rest waits. The socket is left
        non-blocking. Returns how many bytes the daemon took."""
        self.sock.setblocking(False)
        sent = 0
        deadline = time.monotonic() + seconds
        while sent < len(data) and time.monotonic() < deadline:
            try:
                sent += self.sock.send(data[sent:])
            except BlockingIOError:
                time.sleep(0.01)
        return sent

    def upgrade(self, version=2, **flags):
        """Ask for protocol `version` (flags: stream_output,
        stream_idle_output); returns the daemon's Hello."""
        self.send_raw(hello_frame(version, **flags))
        return self.recv()

    def _fill(self, need, deadline):
        while len(self.buf) < need:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no frame from the daemon (have {len(self.buf)} of {need} bytes)")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(1 << 16)
            except ConnectionResetError:
                # A unix socket closed with our unread bytes in it resets
                # (after everything it had sent us was read).
                chunk = b""
            if not chunk:
                raise Closed(f"connection closed with {len(self.buf)} bytes of a frame")
            self.buf += chunk

    def recv(self, timeout=30.0):
        """The next envelope, decoded (see decode_envelope)."""
        deadline = time.monotonic() + timeout
        self._fill(4, deadline)
        (length,) = struct.unpack("<I", self.buf[:4])
        if length > FRAME_MAX:
            raise ValueError(f"frame of {length} bytes")
        self._fill(4 + length, deadline)
        payload, self.buf = self.buf[4:4 + length], self.buf[4 + length:]
        return decode_envelope(payload)

    def closed_by_peer(self, timeout=10.0):
        """True once the daemon closes the connection (data before EOF is
        skipped); False if it is still open after timeout seconds."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.sock.settimeout(max(0.01, deadline - time.monotonic()))
                if not self.sock.recv(1 << 16):
                    return True
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        return False

    def close(self):
        self.sock.close()
