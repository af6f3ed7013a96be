"""netpeer: a plugin under `@network connect` that tries every way out.

Each function returns what happened as data (["ok", ...] or ["err", "ECONNREFUSED"]),
so the test can tell a refusal from a connection; the test's listeners tell
what really arrived.
"""
import ctypes
import errno
import os
import socket
import struct
import threading
import time

import plugbox

__deps_dir__ = "deps"


def _err(e):
    return ["err", errno.errorcode.get(e.errno, str(e.errno))]


@plugbox.export
def raw(host, port, family="inet", nonblocking=False):
    """connect((host, port)), send b"hello", read the answer."""
    fam = socket.AF_INET6 if family == "inet6" else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    try:
        if nonblocking:
            s.setblocking(False)
            r = s.connect_ex((host, port))
            if r not in (0, errno.EINPROGRESS):
                return ["err", errno.errorcode.get(r, str(r))]
            s.setblocking(True)
        s.settimeout(10)
        if not nonblocking:
            s.connect((host, port))
        s.sendall(b"hello")
        return ["ok", s.recv(100).decode(), s.getpeername()[1], s.gettimeout() is not None]
    except OSError as e:
        return _err(e)
    finally:
        s.close()


@plugbox.export
def http_get(url):
    """urllib.request, as a plugin without dependencies would."""
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return ["ok", r.status, r.read().decode()]
    except OSError as e:
        reason = getattr(e, "reason", e)
        return _err(reason) if isinstance(reason, OSError) else ["err", str(reason)]


@plugbox.export
def requests_get(url):
    """requests (vendored into deps/ by the test), as most plugins would."""
    import requests
    try:
        r = requests.get(url, timeout=10)
        return ["ok", r.status_code, r.text]
    except requests.ConnectionError as e:
        cause = e
        while cause is not None and not isinstance(cause, OSError):
            cause = cause.__context__ or cause.__cause__ or (cause.args[0] if cause.args and isinstance(cause.args[0], BaseException) else None)
        return _err(cause) if cause is not None and cause.errno else ["err", "ConnectionError"]


@plugbox.export
def https_get(url, cadata=None):
    """urllib over TLS: the certificate is checked by the plugin, against
    cadata (PEM) when given, else against the default trust store."""
    import ssl
    import urllib.request
    ctx = ssl.create_default_context(cadata=cadata) if cadata else ssl.create_default_context()
    try:
        with urllib.request.urlopen(url, timeout=10, context=ctx) as r:
            return ["ok", r.status, r.read().decode()]
    except OSError as e:
        reason = getattr(e, "reason", e)
        if isinstance(reason, ssl.SSLError):
            return ["err", reason.reason or "SSLError"]
        return _err(reason) if isinstance(reason, OSError) else ["err", str(reason)]


@plugbox.export
def second_connect(host, port, other_port):
    """A connected socket connected again, elsewhere: EISCONN, nothing sent."""
    s = socket.create_connection((host, port), timeout=10)
    try:
        s.connect((host, other_port))
        return ["ok", "reconnected"]
    except OSError as e:
        return _err(e)
    finally:
        s.close()


@plugbox.export
def dup_connect(host, port):
    """connect on a dup of a socket: judged again, as any connect."""
    s = socket.socket()
    d = s.dup()
    try:
        d.settimeout(10)
        d.connect((host, port))
        d.sendall(b"dup")
        return ["ok", d.recv(100).decode()]
    except OSError as e:
        return _err(e)
    finally:
        s.close()
        d.close()


@plugbox.export
def sendto_fastopen(host, port, connected_port):
    """sendto with an address on a stream socket (TCP Fast Open connects
    that way): on a fresh socket and on a connected one."""
    out = []
    s = socket.socket()
    try:
        s.sendto(b"fastopen", socket.MSG_FASTOPEN, (host, port))
        out.append("sent")
    except OSError as e:
        out.append(_err(e)[1])
    s.close()
    c = socket.create_connection((host, connected_port), timeout=10)
    try:
        c.sendto(b"fastopen", socket.MSG_FASTOPEN, (host, port))
        out.append("sent")
    except OSError as e:
        out.append(_err(e)[1])
    c.close()
    return out


@plugbox.export
def other_sockets(host, port):
    """UDP, raw, packet, netlink, unix, bind/listen: each refused."""
    out = {}
    tries = {
        "udp": lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"udp", (host, port)),
        "raw": lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP),
        "packet": lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW),
        "netlink": lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW),
        "unix": lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).connect("/run/plugbox-none"),
        "sctp": lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM, 132),
        "bind": lambda: socket.socket().bind(("127.0.0.1", 0)),
    }
    for name, attempt in tries.items():
        try:
            attempt()
            out[name] = "ok"
        except OSError as e:
            out[name] = _err(e)[1]
    return out


@plugbox.export
def race(host, allowed_port, forbidden_port, tries):
    """A thread flips the sockaddr connect(2) reads between the allowed and
    the forbidden port as fast as it can, while this thread connects with
    that very buffer (ctypes: the same memory the supervisor reads)."""
    libc = ctypes.CDLL(None, use_errno=True)
    addr = ctypes.create_string_buffer(16)
    good = struct.pack("!HH4s8x", socket.AF_INET, allowed_port, socket.inet_aton(host))
    bad = struct.pack("!HH4s8x", socket.AF_INET, forbidden_port, socket.inet_aton(host))
    # sa_family is host order; the port and address are network order
    good = struct.pack("=H", socket.AF_INET) + good[2:]
    bad = struct.pack("=H", socket.AF_INET) + bad[2:]
    ctypes.memmove(addr, good, 16)
    stop = threading.Event()
    flips = [0]

    def flipper():
        n = 0
        while not stop.is_set():
            ctypes.memmove(addr, bad, 16)
            ctypes.memmove(addr, good, 16)
            n += 1
        flips[0] = n

    t = threading.Thread(target=flipper)
    t.start()
    reached = {"ok": 0, "refused": 0, "other": 0}
    try:
        for _ in range(tries):
            s = socket.socket()
            r = libc.connect(s.fileno(), addr, 16)
            e = ctypes.get_errno()
            if r == 0:
                port = s.getpeername()[1]
                reached["ok" if port == allowed_port else "other"] += 1
            elif e == errno.ECONNREFUSED:
                reached["refused"] += 1
            else:
                reached["other"] += 1
            s.close()
    finally:
        stop.set()
        t.join()
    reached["flips"] = flips[0]
    return reached


@plugbox.export
def flood(host, port, threads, seconds):
    """Connect and close as fast as `threads` threads can, for `seconds`."""
    done = [0]
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def run():
        n = 0
        while time.monotonic() < end:
            try:
                socket.create_connection((host, port), timeout=10).close()
            except OSError:
                pass
            n += 1
        with lock:
            done[0] += n

    ts = [threading.Thread(target=run) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return done[0]


@plugbox.export
def connect_many(host, port, n):
    """n connects in a row (the bench): seconds per connect, and how many made it."""
    ok = 0
    start = time.perf_counter()
    for _ in range(n):
        s = socket.socket()
        try:
            s.connect((host, port))
            ok += 1
        except OSError:
            pass
        s.close()
    return [(time.perf_counter() - start) / n, ok]


@plugbox.export
def spin(threads, seconds):
    """Burn `threads` threads of CPU for `seconds`, connecting nowhere: the
    flood's cost to the machine without the supervisor's part."""
    end = time.monotonic() + seconds

    def run():
        n = 0
        while time.monotonic() < end:
            n += 1

    ts = [threading.Thread(target=run) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return threads


_TOKEN = os.urandom(8).hex()


@plugbox.export
def lookup(name, port):
    """What the worker's own resolver (its /etc/hosts) says, and which
    worker says it: the token is drawn once per worker process."""
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        return ["err", str(e), _TOKEN]
    return ["ok", sorted({i[4][0] for i in infos}), _TOKEN]
