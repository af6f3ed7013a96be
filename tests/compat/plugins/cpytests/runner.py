"""Runs CPython's own test modules (Debian's libpython3.11-testsuite) and
says, test by test, what happened, on a descriptor of its own so that the
caller can follow even a run that is killed half way.

The same file runs inside a plugbox worker (cpytests.run) and outside as a
script, `python3.11 -I -S runner.py MODULE [SKIP_ID...]`, so both sides run
exactly the same code. It does what regrtest does for a test run that
matters here: no optional resources (network, cpu, largefile...), and the
working directory a fresh temporary directory (test.support's TESTFN files
are relative to it).

Each line it writes starts "@@cpy " and carries one JSON object:
    {"start": ID}                                  a test begins
    {"end": ID, "outcome": O, "detail": TEXT, "tried": [network|process|write]}
                                                   O: passed failed error skipped; tried:
                                                   what its audit events show it attempted
    {"load": MODULE, "tests": N}                   after loading
    {"attempt": network|process|write}             the running test's first such attempt
    {"done": MODULE}                               the module ran to its end
Tests in SKIP_ID are not run (the caller has their outcome from an earlier
run that was cut short); a SKIP_ID ending in "." skips every test under it.
"""

import io
import json
import os
import sys
import tempfile
import time
import traceback
import unittest

MARK = "@@cpy "


class _Emitter:
    """Writes one event line, keeping under plugbox's meter on a worker's
    stderr (1000 lines and 256 KiB a second, plugbox(1) PLUGIN OUTPUT): a
    fast module (test_array runs thousands of tests a second) waits for
    the next second rather than have its lines dropped, which would count
    tests that passed as never run. Outside the sandbox the same pace
    costs the same time, so both sides are timed alike."""
    LINES_PER_SECOND = 400
    BYTES_PER_SECOND = 128 * 1024

    def __init__(self, fd):
        self.fd = fd
        self.window = time.monotonic()
        self.lines = self.bytes = 0

    def _pace(self, size):
        now = time.monotonic()
        if now - self.window >= 1.0:
            self.window, self.lines, self.bytes = now, 0, 0
        if self.lines + 1 > self.LINES_PER_SECOND or self.bytes + size > self.BYTES_PER_SECOND:
            time.sleep(max(0.0, self.window + 1.0 - now))
            self.window, self.lines, self.bytes = time.monotonic(), 0, 0
        self.lines += 1
        self.bytes += size

    def __call__(self, **fields):
        line = MARK + json.dumps(fields, ensure_ascii=True) + "\n"
        data = line.encode()
        self._pace(len(data))
        while data:
            data = data[os.write(self.fd, data):]


def _short(err_text, limit=900):
    """The end of a traceback: the frames near the error and the message."""
    lines = [ln for ln in err_text.strip().splitlines() if ln.strip()]
    text = "\n".join(lines[-8:])
    return text[-limit:]


# Audit events that show what a test attempted, whatever the sandbox then
# said (plugbox rate-limits its reports, and a refused socket() in a setUp
# often leaves only "[Errno 13] Permission denied" as a skip reason).
_NETWORK_EVENTS = {"socket.__new__", "socket.bind", "socket.connect", "socket.sendto", "socket.sendmsg"}
_PROCESS_EVENTS = {"subprocess.Popen", "os.fork", "os.forkpty", "os.exec", "os.posix_spawn", "os.spawn",
                   "os.system", "os.startfile", "pty.spawn"}
_PATH_EVENTS = {"os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.symlink", "os.link", "os.truncate",
                "os.chmod", "os.chown", "os.utime", "os.setxattr", "os.removexattr", "shutil.copyfile",
                "shutil.copytree", "shutil.rmtree", "shutil.move", "shutil.make_archive"}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class _Attempts:
    """Per test: did it try the network, a new process, a write outside the
    temporary directory (the scratch directory inside plugbox)?"""

    def __init__(self):
        self.current = set()
        self.emit = None
        self.scratch = (os.path.realpath(tempfile.gettempdir()), tempfile.gettempdir())

    def _outside(self, path):
        if isinstance(path, int):
            return False
        try:
            path = os.fsdecode(path)
        except TypeError:
            return False
        path = os.path.abspath(path)
        return not path.startswith(self.scratch) and not path.startswith("/dev/")

    def _add(self, what):
        if what not in self.current:
            self.current.add(what)
            # said at once: a test that then hangs or is killed never ends
            if self.emit is not None:
                self.emit(attempt=what)

    def hook(self, event, args):
        if event in _NETWORK_EVENTS:
            # any family: `default` refuses socket() itself, AF_UNIX included
            self._add("network")
        elif event in _PROCESS_EVENTS:
            self._add("process")
        elif event == "open":
            path, mode, flags = (tuple(args) + (None, None, None))[:3]
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
                (isinstance(flags, int) and flags & _WRITE_FLAGS)
            if writes and path is not None and self._outside(path):
                self._add("write")
        elif event in _PATH_EVENTS and args:
            if self._outside(args[0] if not isinstance(args[0], (list, tuple)) else args[0][0]):
                self._add("write")

    def take(self):
        found, self.current = sorted(self.current), set()
        return found


_attempts = _Attempts()


class _Result(unittest.TestResult):
    def __init__(self, emit):
        super().__init__()
        self.emit = emit
        self.outcome = {}

    def _set(self, test, outcome, detail=""):
        tid = test.id()
        # a failed subtest fails the test; the first bad outcome is kept
        if self.outcome.get(tid, ("passed",))[0] in ("passed",):
            self.outcome[tid] = (outcome, detail)

    def startTest(self, test):
        super().startTest(test)
        self.outcome[test.id()] = ("passed", "")
        _attempts.take()
        self.emit(start=test.id())

    def stopTest(self, test):
        super().stopTest(test)
        outcome, detail = self.outcome.get(test.id(), ("passed", ""))
        self.emit(end=test.id(), outcome=outcome, detail=detail, tried=_attempts.take())

    def addError(self, test, err):
        super().addError(test, err)
        text = _short(self._exc_info_to_string(err, test))
        if isinstance(test, unittest.TestCase):
            self._set(test, "error", text)
        else:
            # setUpClass / setUpModule failed: an _ErrorHolder, no start/stop
            self.emit(start=test.id())
            self.emit(end=test.id(), outcome="error", detail=text, tried=_attempts.take())

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._set(test, "failed", _short(self._exc_info_to_string(err, test)))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        if isinstance(test, unittest.TestCase):
            self._set(test, "skipped", str(reason)[:300])
        else:
            self.emit(start=test.id())
            self.emit(end=test.id(), outcome="skipped", detail=str(reason)[:300], tried=_attempts.take())

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._set(test, "failed", "unexpected success")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            failed = issubclass(err[0], test.failureException)
            self._set(test, "failed" if failed else "error",
                      _short(self._exc_info_to_string(err, test)))


def _flatten(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from _flatten(item)
        else:
            yield item


def run(module, skip=(), fd=2):
    """Run every test of `module` except those in skip; report on fd."""
    emit = _Emitter(os.dup(fd))
    from test import support
    support.use_resources = []      # regrtest's default: no -u resources
    support.verbose = 0
    skip = set(skip)
    work = tempfile.mkdtemp(prefix="cpytests-")
    os.chdir(work)
    try:
        suite = unittest.defaultTestLoader.loadTestsFromName(module)
    except Exception:
        emit(load=module, tests=0, error=_short(traceback.format_exc()))
        return
    _attempts.emit = emit
    sys.addaudithook(_attempts.hook)
    prefixes = tuple(s for s in skip if s.endswith("."))
    tests = [t for t in _flatten(suite) if t.id() not in skip and not t.id().startswith(prefixes)]
    emit(load=module, tests=len(tests))
    result = _Result(emit)
    saved = sys.stdout, sys.stderr
    sink = io.StringIO()
    # The tests' own chatter is not what we measure, and would flood the log.
    sys.stdout = sys.stderr = sink
    try:
        unittest.TestSuite(tests).run(result)
    finally:
        sys.stdout, sys.stderr = saved
    emit(done=module)


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2:])
