"""A `plugbox serve` daemon for tests: started on a plugins directory,
spoken to with pbwire, its memory read from /proc, stopped at the end.
Shared by test_serve.py and test_channel.py."""

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import pbwire


class Daemon:
    """A running `plugbox serve`; its stderr goes to a file."""

    def __init__(self, exe, env, plugins, sock, args, log_path):
        self.sock = Path(sock)
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(
            [exe, "serve", "--plugins", str(plugins), "--socket", str(sock), *map(str, args)],
            env=env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, start_new_session=True)
        deadline = time.monotonic() + 15
        while "listening on" not in self.stderr():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"plugbox serve did not start (status {self.proc.poll()}):\n{self.stderr()}")
            time.sleep(0.02)

    @property
    def pid(self):
        return self.proc.pid

    def stderr(self):
        return Path(self.log_path).read_text(errors="replace")

    def conn(self, **kw):
        return pbwire.Conn(self.sock, **kw)

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Send sig and wait; returns (exit status, seconds it took)."""
        start = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"plugbox serve still running {timeout} s after signal {sig}:\n{self.stderr()}")
        self.log.close()
        return status, time.monotonic() - start

    def rss_kib(self, field="VmRSS"):
        """Resident memory now (VmRSS) or at its peak so far (VmHWM), in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise AssertionError(f"no {field}")


@pytest.fixture
def sockdir():
    # Socket paths must fit sun_path (108 bytes): not under the deep scratch tree.
    path = Path(tempfile.mkdtemp(prefix="pbs-", dir="/tmp"))
    os.chmod(path, 0o755)          # uid 65534 may reach the socket (the peer-credential test)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def serve(plugbox, scratch, sockdir):
    """serve(plugins, *args, sock=None) -> Daemon, stopped at the end of the test."""
    daemons = []

    def start(plugins, *args, sock=None):
        d = Daemon(plugbox.exe, plugbox.env, plugins, sock or sockdir / "s.sock", args,
                   scratch / f"serve{len(daemons)}.log")
        daemons.append(d)
        return d
    yield start
    for d in daemons:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
        d.log.close()
