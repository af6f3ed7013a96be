"""Writes forged messages on the worker's report socket (descriptor 5),
where only the SIGSYS reporter and the seccomp listener hand-over should
write. Each function returns (or prints) evidence that the bytes went out;
the supervisor must judge them without crashing, hanging or being fooled
into holding descriptors it never asked for."""

import os
import socket

import plugbox

REPORT_FD = 5
SYS_socket = 41
AUDIT_ARCH_X86_64 = 0xC000003E


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number, wire, payload):
    return _varint(number << 3 | wire) + payload


def _violation(nr, traceback):
    """An Envelope{violation: Violation{nr, arch, 6 args, traceback}}."""
    args = b"".join(_varint(a) for a in (2, 1, 0, 0, 0, 0))
    tb = traceback.encode()
    body = (_field(1, 0, _varint(nr)) + _field(2, 0, _varint(AUDIT_ARCH_X86_64))
            + _field(3, 2, _varint(len(args)) + args) + _field(4, 2, _varint(len(tb)) + tb))
    return _field(10, 2, _varint(len(body)) + body)


LISTENER = _field(11, 2, _varint(0))   # Envelope{listener: SeccompListener{}}


def _send_with_fds(payload, fds):
    # Said before sending: the supervisor may end this worker before a
    # line printed afterwards could reach it.
    print(f"[sending {len(payload)} bytes with {len(fds)} descriptors]", flush=True)
    s = socket.socket(fileno=REPORT_FD)
    try:
        return s.sendmsg([payload], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, bytes(
            b for fd in fds for b in fd.to_bytes(4, "little")))])
    finally:
        s.detach()      # fd 5 stays open: the supervisor is the one to judge


@plugbox.export
def fake_listener():
    """Claim to hand over a seccomp listener, attaching a pipe instead."""
    r, w = os.pipe()
    sent = _send_with_fds(LISTENER, [r])
    print(f"[sent a fake listener: {sent} bytes]", flush=True)
    return sent


@plugbox.export
def many_fds():
    """A report carrying eight descriptors."""
    fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(8)]
    sent = _send_with_fds(_violation(SYS_socket, ""), fds)
    print(f"[sent a report with 8 descriptors: {sent} bytes]", flush=True)
    return sent


@plugbox.export
def one_fd():
    """A well-formed report with a descriptor attached."""
    sent = _send_with_fds(_violation(SYS_socket, ""), [os.open("/dev/null", os.O_RDONLY)])
    print(f"[sent a report with a descriptor: {sent} bytes]", flush=True)
    return sent


@plugbox.export
def garbage():
    payload = bytes(range(256)) * 8
    # Said before sending, as in _send_with_fds: the worker may be gone
    # before a line printed afterwards reaches the supervisor.
    print(f"[sending {len(payload)} bytes of garbage]", flush=True)
    sent = os.write(REPORT_FD, payload)
    print(f"[sent {sent} bytes of garbage]", flush=True)
    return sent


@plugbox.export
def fake_denials(count):
    """Claim `count` denied socket() calls, each with a traceback that
    carries a terminal escape sequence."""
    msg = _violation(SYS_socket, "  File \"x\", line 1 in \x1b]0;owned\x07\x1b[2J\n")
    for _ in range(count):
        os.write(REPORT_FD, msg)
    return count
