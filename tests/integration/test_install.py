"""`plugbox install`, upgrade and `plugbox remove` (supervisor/plugbox_install.c,
worker/install.c, worker/install.py, policies/install.policy).

Wheels are built here with zipfile, never committed. Each hostile wheel must
be refused with one line naming the wheel and the member, exit 2, and leave
nothing behind: no marker outside the staging directory, no new entry in
PLUGINS, an empty staging directory. Upgrades swap directories atomically:
killed at any point, an install leaves a whole version in place, and the
next one cleans up after it. PLUGINS/.plugbox is plugbox's own (lock,
staging/, old/), skipped by listings.
"""

import base64
import fcntl
import hashlib
import os
import re
import shutil
import signal
import stat
import struct
import subprocess
import threading
import time
import warnings
import zipfile
from pathlib import Path

import pytest

from pbtest import (EXIT_DIED, EXIT_OK, EXIT_SANDBOX, EXIT_USAGE, assert_one_error_line, explain,
                    parse_list, scaled, stderr_lines)

GROUP = "plugbox.demo"


# ---- wheels -----------------------------------------------------------------

def record_hash(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(path, name="demo", version="1.0", answer="v1", files=None, metadata=None, wheel=None,
               dist_info=None, extra=(), record=True, record_edit=None, compression=zipfile.ZIP_DEFLATED):
    """A wheel at path: package NAME with api.hello() -> answer, entry point
    plugbox.demo:hello, *.dist-info with METADATA, WHEEL, entry_points.txt and
    RECORD. files adds (or, with None, drops) members listed in RECORD;
    extra adds members (names or ZipInfo) that RECORD does not list."""
    dist_info = dist_info or f"{name}-{version}.dist-info"
    members = {
        f"{name}/__init__.py": b"",
        f"{name}/api.py": f"def hello(*args):\n    return {answer!r}\n".encode(),
        f"{dist_info}/METADATA": (metadata if metadata is not None else
                                  f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n").encode(),
        f"{dist_info}/WHEEL": (wheel if wheel is not None else
                               "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
                               ).encode(),
        f"{dist_info}/entry_points.txt": f"[{GROUP}]\nhello = {name}.api:hello\n".encode(),
    }
    for member, data in (files or {}).items():
        if data is None:
            members.pop(member, None)
        else:
            members[member] = data
    if record:
        lines = [f"{m},{record_hash(d)},{len(d)}" for m, d in members.items()]
        lines.append(f"{dist_info}/RECORD,,")
        if record_edit:
            lines = record_edit(lines)
        members[f"{dist_info}/RECORD"] = ("\n".join(lines) + "\n").encode()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # duplicate names are on purpose
        with zipfile.ZipFile(path, "w", compression) as z:
            for member, data in members.items():
                z.writestr(member, data)
            for member, data in extra:
                z.writestr(member, data)
    return Path(path)


def special(name, kind, data=b""):
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (kind | 0o644) << 16
    return info, data


def forge_size(path, member, size):
    """Make the central directory declare `size` bytes for member."""
    blob = bytearray(Path(path).read_bytes())
    at = 0
    while (at := blob.find(b"PK\x01\x02", at)) >= 0:
        n, e, c = struct.unpack_from("<HHH", blob, at + 28)
        if bytes(blob[at + 46:at + 46 + n]).decode() == member:
            struct.pack_into("<I", blob, at + 24, size)
            Path(path).write_bytes(bytes(blob))
            return
        at += 46 + n + e + c
    raise AssertionError(member)


# ---- fixtures and helpers ------------------------------------------------------

@pytest.fixture
def env(scratch):
    """A world-readable PLUGINS and a place for wheels."""
    plugins = scratch / "plugins"
    plugins.mkdir()
    wheels = scratch / "wheels"
    wheels.mkdir()
    return plugins, wheels


def install(plugbox, plugins, source, *options, **kw):
    return plugbox.run(["install", "--plugins", plugins, *options, source], **kw)


def install_ok(plugbox, plugins, source, *options, **kw):
    cp = install(plugbox, plugins, source, *options, **kw)
    assert cp.returncode == EXIT_OK, explain(cp)
    assert cp.stdout.count("\n") == 1 and cp.stderr == "", explain(cp)
    return cp.stdout.strip()


def hello(plugbox, plugins, name="demo"):
    cp = plugbox.call(plugins, name, f"{GROUP}:hello")
    assert cp.returncode == EXIT_OK, explain(cp)
    return cp.stdout.strip()


def meta_state(plugins):
    """(staging entries, old entries): both empty once an install is done."""
    meta = Path(plugins) / ".plugbox"
    return sorted(os.listdir(meta / "staging")), sorted(os.listdir(meta / "old"))


def entries(plugins):
    return sorted(os.listdir(plugins))


# ---- installing, listing, calling ------------------------------------------------

def test_install_wheel_then_list_and_call(plugbox, env):
    plugins, wheels = env
    wheel = make_wheel(wheels / "demo-1.0-py3-none-any.whl")
    assert install_ok(plugbox, plugins, wheel) == "installed demo 1.0"
    assert entries(plugins) == [".plugbox", "demo"]
    assert meta_state(plugins) == ([], [])
    cp = plugbox.list(plugins)
    assert cp.returncode == EXIT_OK, explain(cp)
    assert parse_list(cp) == {"demo": ("path", "1.0", {f"{GROUP}:hello"})}
    assert hello(plugbox, plugins) == '"v1"'
    # pip's layout: the package at the root, the dist-info kept, RECORD as installed
    root = plugins / "demo"
    assert sorted(os.listdir(root)) == ["demo", "demo-1.0.dist-info"]
    record = (root / "demo-1.0.dist-info" / "RECORD").read_text()
    assert "demo/api.py,sha256=" in record and "demo-1.0.dist-info/RECORD,," in record
    for dirpath, dirnames, filenames in os.walk(root):
        assert stat.S_IMODE(os.stat(dirpath).st_mode) == 0o755
        for f in filenames:
            st = os.stat(os.path.join(dirpath, f))
            assert stat.S_IMODE(st.st_mode) == 0o644
            assert (st.st_uid, st.st_gid) == (os.stat(plugins).st_uid, os.stat(plugins).st_gid)


def test_name_option_and_normalised_names(plugbox, env):
    plugins, wheels = env
    wheel = make_wheel(wheels / "w.whl", name="My.Tool", dist_info="my_tool-1.0.dist-info")
    # the package inside is My.Tool/..., which is only a directory name here
    assert install_ok(plugbox, plugins, wheel) == "installed my_tool 1.0"
    assert install_ok(plugbox, plugins, wheel, "--name", "other-name") == "installed other-name 1.0"
    assert entries(plugins) == [".plugbox", "my_tool", "other-name"]


def test_upgrade_changes_the_answer(plugbox, env):
    plugins, wheels = env
    install_ok(plugbox, plugins, make_wheel(wheels / "1.whl"))
    assert hello(plugbox, plugins) == '"v1"'
    out = install_ok(plugbox, plugins, make_wheel(wheels / "2.whl", version="2.0", answer="v2"))
    assert out == "installed demo 2.0 (upgraded from 1.0)"
    assert hello(plugbox, plugins) == '"v2"'
    assert sorted(os.listdir(plugins / "demo")) == ["demo", "demo-2.0.dist-info"]
    assert meta_state(plugins) == ([], [])


def test_failed_upgrade_keeps_the_old_version(plugbox, env):
    plugins, wheels = env
    install_ok(plugbox, plugins, make_wheel(wheels / "1.whl"))
    bad = make_wheel(wheels / "2.whl", version="2.0", answer="v2",
                     record_edit=lambda lines: [re.sub(r"sha256=[^,]+", "sha256=" + "A" * 43, l, count=1)
                                                if l.startswith("demo/api.py") else l for l in lines])
    cp = install(plugbox, plugins, bad)
    assert_one_error_line(cp, str(bad), "member 'demo/api.py'", "does not match")
    assert hello(plugbox, plugins) == '"v1"'
    assert entries(plugins) == [".plugbox", "demo"]
    assert meta_state(plugins) == ([], [])


def test_data_directory(plugbox, env):
    """*.data/purelib and platlib are merged into the root; scripts,
    headers and data are skipped, and the output says how many."""
    plugins, wheels = env
    wheel = make_wheel(wheels / "d.whl", files={
        "demo-1.0.data/purelib/extra_mod.py": b"X = 1\n",
        "demo-1.0.data/platlib/plat_mod.py": b"Y = 2\n",
        "demo-1.0.data/scripts/tool": b"#!/bin/sh\n",
        "demo-1.0.data/data/share/x.txt": b"data\n"})
    out = install_ok(plugbox, plugins, wheel)
    assert out == "installed demo 1.0; skipped 2 files of its .data scripts, headers and data"
    assert sorted(os.listdir(plugins / "demo")) == ["demo", "demo-1.0.dist-info", "extra_mod.py",
                                                    "plat_mod.py"]


# ---- hostile wheels -----------------------------------------------------------------

BOMB = b"\0" * (4 << 20)


def hostile_cases(marker):
    """name -> (make_wheel keyword arguments, text the error must contain)."""
    return {
        "dotdot": (dict(extra=[("../../escape", b"x")]), "member '../../escape': its path leaves"),
        "dotdot_inside": (dict(extra=[("demo/../../escape2", b"x")]), "member 'demo/../../escape2'"),
        "absolute": (dict(extra=[(str(marker), b"x")]), f"member '{marker}': an absolute path"),
        "symlink": (dict(extra=[special("demo/passwd", stat.S_IFLNK, b"/etc/passwd")]),
                    "member 'demo/passwd': a symlink"),
        "fifo": (dict(extra=[special("demo/fifo", stat.S_IFIFO)]), "member 'demo/fifo': a fifo"),
        "device": (dict(extra=[special("demo/sda", stat.S_IFBLK)]), "member 'demo/sda': a block device"),
        "duplicate": (dict(extra=[("demo/api.py", b"def hello(): return 'evil'\n")]),
                      "member 'demo/api.py': a duplicate name"),
        "zip_bomb": (dict(files={"demo/zeros.bin": BOMB}), "member 'demo/zeros.bin': compressed"),
        "bad_hash": (dict(record_edit=lambda lines: [re.sub(r"sha256=[^,]+", record_hash(b"evil"), l)
                                                     if l.startswith("demo/api.py") else l for l in lines]),
                     "member 'demo/api.py': its sha256 does not match demo-1.0.dist-info/RECORD"),
        "malformed_hash": (dict(record_edit=lambda lines: [l.replace(",sha256=", ",sha256=AAAA", 1)
                                                           if l.startswith("demo/api.py") else l for l in lines]),
                           "member 'demo/api.py': demo-1.0.dist-info/RECORD gives it a malformed hash"),
        "not_in_record": (dict(extra=[("demo/unlisted.py", b"")]), "member 'demo/unlisted.py': not listed"),
        "record_lists_missing": (dict(record_edit=lambda lines: lines + ["demo/ghost.py,sha256=x,1"]),
                                 "lists 'demo/ghost.py', which the wheel does not contain"),
        "no_record": (dict(record=False), "demo-1.0.dist-info/RECORD is missing"),
        "md5_record": (dict(record_edit=lambda lines: [l.replace("sha256=", "md5=", 1)
                                                       if l.startswith("demo/api.py") else l for l in lines]),
                       "member 'demo/api.py': demo-1.0.dist-info/RECORD gives it no sha256 hash"),
        "no_metadata": (dict(files={"demo-1.0.dist-info/METADATA": None}), "demo-1.0.dist-info/METADATA is missing"),
        "no_version": (dict(metadata="Metadata-Version: 2.1\nName: demo\n"), "METADATA: no Version field"),
        "bad_version": (dict(metadata="Metadata-Version: 2.1\nName: demo\nVersion: 1.0; rm -rf\n"),
                        "is not a valid version"),
        "two_names": (dict(metadata="Name: demo\nName: other\nVersion: 1.0\n"), "more than one Name field"),
        "bad_name": (dict(metadata="Metadata-Version: 2.1\nName: bad name!\nVersion: 1.0\n"),
                     "Name 'bad name!' is not a valid distribution name"),
        "name_mismatch": (dict(metadata="Metadata-Version: 2.1\nName: other\nVersion: 1.0\n"),
                          "does not match METADATA Name 'other'"),
        "two_dist_infos": (dict(files={"other-1.0.dist-info/METADATA": b"Name: other\nVersion: 1.0\n"}),
                           "more than one .dist-info directory: demo-1.0.dist-info, other-1.0.dist-info"),
        "no_dist_info": (dict(dist_info="demo-1.0.info"), "no .dist-info directory"),
        "no_wheel_file": (dict(files={"demo-1.0.dist-info/WHEEL": None}), "demo-1.0.dist-info/WHEEL is missing"),
        "wheel_version_2": (dict(wheel="Wheel-Version: 2.0\n"), "Wheel-Version '2.0' is not 1.x"),
        "top_init": (dict(files={"__init__.py": b""}), "member '__init__.py': a top-level __init__.py"),
        "unknown_data_scheme": (dict(files={"demo-1.0.data/bin/x": b""}), "unknown directory 'bin'"),
        "data_makes_dist_info": (dict(files={"demo-1.0.data/purelib/evil-1.0.dist-info/entry_points.txt": b""}),
                                 "member 'demo-1.0.data/purelib/evil-1.0.dist-info/entry_points.txt': "
                                 "installs into a .dist-info directory"),
        "data_overwrites_record": (dict(files={"demo-1.0.data/purelib/demo-1.0.dist-info/RECORD": b""}),
                                   "installs into a .dist-info directory"),
        "control_chars": (dict(extra=[("demo/a\x1b[31mb", b"")]), "member 'demo/a?[31mb': control characters"),
        "backslash": (dict(extra=[("demo\\..\\..\\x", b"")]), "a backslash"),
    }


@pytest.mark.parametrize("case", sorted(hostile_cases("/x")))
def test_hostile_wheel_is_refused(plugbox, env, scratch, case):
    plugins, wheels = env
    marker = scratch / "marker-abs"
    kwargs, expected = hostile_cases(marker)[case]
    wheel = make_wheel(wheels / f"{case}.whl", **kwargs)
    cp = install(plugbox, plugins, wheel)
    line = assert_one_error_line(cp, f"cannot install {wheel}: ", expected)
    assert len(line) < 600, line
    assert entries(plugins) == [".plugbox"]
    assert meta_state(plugins) == ([], [])
    assert not marker.exists()
    assert not list(scratch.rglob("escape*")), list(scratch.rglob("escape*"))


def test_too_many_members(plugbox, env):
    plugins, wheels = env
    wheel = make_wheel(wheels / "many.whl", compression=zipfile.ZIP_STORED,
                       extra=[(f"demo/m{i}", b"") for i in range(30000)])
    cp = install(plugbox, plugins, wheel)
    assert_one_error_line(cp, str(wheel), "the wheel has 30006 members, more than the limit of 20000")
    assert entries(plugins) == [".plugbox"]


def test_declared_size_over_the_limit(plugbox, env):
    """A header may say anything: 300 MiB declared is refused before a byte
    is written; a member that declares 100 bytes and holds 4 MiB yields 100
    at most, then fails its CRC."""
    plugins, wheels = env
    wheel = make_wheel(wheels / "big.whl", files={"demo/big.bin": b"0123456789" * 1000})
    forge_size(wheel, "demo/big.bin", 300 << 20)
    cp = install(plugbox, plugins, wheel)
    assert_one_error_line(cp, str(wheel), "member 'demo/big.bin': declares 314572800 bytes, more than the limit")
    liar = make_wheel(wheels / "liar.whl", files={"demo/zeros.bin": BOMB},
                      record_edit=lambda lines: [re.sub(r",\d+$", ",", l) for l in lines])
    forge_size(liar, "demo/zeros.bin", 100)
    cp = install(plugbox, plugins, liar)
    assert_one_error_line(cp, str(liar), "member 'demo/zeros.bin': ")
    assert entries(plugins) == [".plugbox"] and meta_state(plugins) == ([], [])


def test_not_a_wheel(plugbox, env):
    plugins, wheels = env
    junk = wheels / "junk.whl"
    junk.write_bytes(b"this is not a zip file\n" * 10)
    assert_one_error_line(install(plugbox, plugins, junk), str(junk), "not a zip archive")
    fifo = wheels / "fifo"
    os.mkfifo(fifo)
    assert_one_error_line(install(plugbox, plugins, fifo), "neither a wheel nor a plugin directory")
    assert_one_error_line(install(plugbox, plugins, wheels / "missing.whl"), "No such file")


def test_usage_errors(plugbox, env):
    plugins, wheels = env
    wheel = make_wheel(wheels / "1.whl")
    assert_one_error_line(install(plugbox, plugins, wheel, "--name", "../evil"), "--name '../evil' is not a plugin name")
    assert_one_error_line(install(plugbox, plugins, wheel, "--name", ".hidden"), "is not a plugin name")
    assert_one_error_line(plugbox.run(["install", wheel]), "install needs --plugins DIR")
    assert_one_error_line(plugbox.run(["install", "--plugins", plugins]), "install needs one WHEEL_OR_DIR")
    assert_one_error_line(install(plugbox, plugins.parent / "nowhere", wheel), "--plugins", "No such file")
    assert_one_error_line(plugbox.run(["remove", "--plugins", plugins, "x/../y"]), "'x/../y' is not a plugin name")
    assert_one_error_line(plugbox.run(["remove", "--plugins", plugins, "ghost"]),
                          f"remove: no plugin 'ghost' in {plugins}")
    assert entries(plugins) == [".plugbox"]


# ---- the sandbox around the unpacker ---------------------------------------------

@pytest.fixture
def policies_copy(scratch):
    """policies_copy(edit) -> a copy of the shipped policies whose
    install.policy text went through edit(text)."""
    shipped = Path(os.environ.get("PLUGBOX_POLICIES") or Path(__file__).resolve().parents[2] / "policies")

    def make(edit):
        target = scratch / "policies"
        target.mkdir()
        for f in shipped.glob("*.policy"):
            shutil.copy(f, target / f.name)
        (target / "install.policy").write_text(edit((shipped / "install.policy").read_text()))
        return target
    return make


def probes_env(scratch, open_dir, plugins):
    """Writes outside staging (a world-writable directory, PLUGINS, /etc,
    the staging directory's parent), a read of a secret beside the wheel,
    and one write inside staging, which must work."""
    secret = scratch / "secret"
    secret.write_text("secret\n")
    os.chmod(secret, 0o644)
    outside = open_dir("open")
    specs = [f"w:{outside}/escape-w", f"w:{plugins}/escape-p", "w:/etc/escape-etc",
             f"w:{plugins}/.plugbox/staging/escape-s", "w:/tmp/escape-tmp", f"r:{secret}",
             "w:@staging/probe-ok"]
    return {"PLUGBOX_INSTALL_TEST_PROBES": " ".join(specs)}, specs


def probe_outcomes(cp):
    found = {}
    for line in stderr_lines(cp):
        m = re.match(r"^plugbox: install probe (\S+): (\S+)$", line)
        if m:
            found[m.group(1)] = m.group(2)
    return found


def test_unpacker_cannot_write_outside_staging(plugbox, env, scratch, open_dir):
    """Inside the install worker, an open for writing anywhere but staging
    fails (mount tree: the path is absent or read-only), reading a file
    beside the wheel fails, and writing in staging works: the probe's file
    is part of the installed plugin. (The probes come from the operator's
    environment, which a wheel cannot set.)"""
    plugins, wheels = env
    extra_env, specs = probes_env(scratch, open_dir, plugins)
    cp = install(plugbox, plugins, make_wheel(wheels / "1.whl"), env=extra_env)
    assert cp.returncode == EXIT_OK, explain(cp)
    outcomes = probe_outcomes(cp)
    assert set(outcomes) == set(specs), explain(cp)
    assert outcomes["w:@staging/probe-ok"] == "ok", explain(cp)
    for spec in specs[:-1]:
        assert outcomes[spec] in ("ENOENT", "EROFS", "EACCES"), (spec, explain(cp))
    assert (plugins / "demo" / "probe-ok").read_text() == "probe\n"
    assert not list(scratch.rglob("escape*")) and not Path("/etc/escape-etc").exists()
    assert not Path("/tmp/escape-tmp").exists()


def test_landlock_alone_keeps_writes_in_staging(plugbox, env, scratch, open_dir, policies_copy):
    """Without namespaces (no mount tree) the worker sees the host's paths,
    and Landlock is the wall: every write outside staging gets EACCES."""
    plugins, wheels = env
    pol = policies_copy(lambda t: t.replace("@layer namespaces required", "@layer namespaces off")
                        .replace("@layer landlock optional", "@layer landlock required"))
    extra_env, specs = probes_env(scratch, open_dir, plugins)
    extra_env["PLUGBOX_POLICIES"] = str(pol)
    cp = install(plugbox, plugins, make_wheel(wheels / "1.whl"), env=extra_env)
    if cp.returncode == EXIT_DIED and "does not offer it" in cp.stderr:
        pytest.skip("this kernel has no Landlock: " + cp.stderr.strip())
    assert cp.returncode == EXIT_OK, explain(cp)
    outcomes = probe_outcomes(cp)
    assert outcomes["w:@staging/probe-ok"] == "ok", explain(cp)
    for spec in specs[:-2]:
        assert outcomes[spec] in ("EACCES", "ENOENT"), (spec, explain(cp))
    assert outcomes[f"w:{scratch}/open/escape-w"] == "EACCES", explain(cp)
    assert not list(scratch.rglob("escape*"))
    assert hello(plugbox, plugins) == '"v1"'


def test_sandbox_kill_is_exit_3(plugbox, env, policies_copy):
    """A syscall install.policy kills ends the unpacker: exit 3, the call and
    the rule named, nothing installed."""
    plugins, wheels = env
    pol = policies_copy(lambda t: t.replace("mkdirat: 1 ", "mkdirat: kill "))
    wheel = make_wheel(wheels / "1.whl")
    cp = install(plugbox, plugins, wheel, "--policies", pol)
    assert cp.returncode == EXIT_SANDBOX, explain(cp)
    (line,) = stderr_lines(cp)
    assert line.startswith(f"plugbox: cannot install {wheel}: the sandbox killed the unpacker: mkdirat("), line
    assert "is not allowed by rule 'mkdirat: kill' at install.policy:" in line, line
    assert entries(plugins) == [".plugbox"] and meta_state(plugins) == ([], [])


def test_unpacker_deadline_is_exit_4(plugbox, env, policies_copy):
    plugins, wheels = env
    pol = policies_copy(lambda t: t.replace("@limit call-time 300s", "@limit call-time 1ms"))
    cp = install(plugbox, plugins, make_wheel(wheels / "1.whl"), "--policies", pol)
    assert cp.returncode == EXIT_DIED, explain(cp)
    assert "the unpacker timed out" in cp.stderr and cp.stdout == "", explain(cp)
    assert entries(plugins) == [".plugbox"] and meta_state(plugins) == ([], [])


def test_file_size_limit_comes_from_the_policy(plugbox, env, policies_copy):
    plugins, wheels = env
    pol = policies_copy(lambda t: t.replace("@limit file-size 256M", "@limit file-size 1M"))
    wheel = make_wheel(wheels / "1.whl", files={"demo/blob.bin": os.urandom(2 << 20)})
    cp = install(plugbox, plugins, wheel, "--policies", pol)
    assert_one_error_line(cp, "member 'demo/blob.bin': declares 2097152 bytes, more than the limit of 1048576")


# ---- interruptions, concurrency, versions in use ----------------------------------------

def start(plugbox, args, extra_env):
    e = dict(plugbox.env)
    e.update(extra_env)
    return subprocess.Popen([plugbox.exe, *map(str, args)], env=e, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


@pytest.mark.parametrize("point,in_place", [("unpacked", "1.0"), ("exchanged", "2.0"), ("retired", "2.0")])
def test_kill_9_leaves_a_whole_version(plugbox, env, point, in_place):
    """Killed after unpacking, after the exchange, and after the old version
    went to old/: PLUGINS/demo is a whole version throughout, and the next
    install cleans what the killed one left."""
    plugins, wheels = env
    install_ok(plugbox, plugins, make_wheel(wheels / "1.whl"))
    proc = start(plugbox, ["install", "--plugins", plugins, make_wheel(wheels / "2.whl", version="2.0", answer="v2")],
                 {"PLUGBOX_INSTALL_TEST_PAUSE": point})
    line = proc.stderr.readline()
    assert line == f"plugbox: install paused at {point}\n", line + proc.stderr.read()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    proc.stdout.close()
    proc.stderr.close()
    assert hello(plugbox, plugins) == ('"v1"' if in_place == "1.0" else '"v2"')
    assert entries(plugins) == [".plugbox", "demo"]
    assert meta_state(plugins) != ([], [])          # what it left behind ...
    out = install_ok(plugbox, plugins, make_wheel(wheels / "3.whl", version="3.0", answer="v3"))
    assert out == f"installed demo 3.0 (upgraded from {in_place})"
    assert meta_state(plugins) == ([], [])          # ... the next install cleaned
    assert hello(plugbox, plugins) == '"v3"'


def test_kill_9_while_unpacking(plugbox, env):
    plugins, wheels = env
    install_ok(plugbox, plugins, make_wheel(wheels / "1.whl"))
    big = make_wheel(wheels / "2.whl", version="2.0", answer="v2",
                     files={f"demo/data/f{i}.txt": os.urandom(64) for i in range(6000)})
    proc = start(plugbox, ["install", "--plugins", plugins, big], {})
    staging = plugins / ".plugbox" / "staging"
    deadline = time.monotonic() + scaled(20)
    while time.monotonic() < deadline and proc.poll() is None:
        if any((staging / d / "demo").exists() for d in os.listdir(staging)):
            break
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    if proc.returncode == 0:
        pytest.skip("the install finished before it could be killed")
    assert hello(plugbox, plugins) == '"v1"'
    out = install_ok(plugbox, plugins, make_wheel(wheels / "3.whl", version="3.0", answer="v3"))
    assert out == "installed demo 3.0 (upgraded from 1.0)"
    assert meta_state(plugins) == ([], [])


def test_concurrent_installs_serialize(plugbox, env):
    plugins, wheels = env
    install_ok(plugbox, plugins, make_wheel(wheels / "1.whl"))
    versions = ["2.0", "3.0", "4.0", "5.0"]
    procs = [start(plugbox, ["install", "--plugins", plugins,
                             make_wheel(wheels / f"{v}.whl", version=v, answer=v)], {}) for v in versions]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=scaled(60))
        assert p.returncode == EXIT_OK and err == "", (out, err)
        outs.append(out.strip())
    # Serialized: each upgraded from the one before it, in some order.
    step = dict(re.fullmatch(r"installed demo (\S+) \(upgraded from (\S+)\)", o).group(2, 1) for o in outs)
    chain, at = [], "1.0"
    while at in step:
        at = step[at]
        chain.append(at)
    assert sorted(chain) == versions, outs
    assert hello(plugbox, plugins) == f'"{chain[-1]}"'
    assert meta_state(plugins) == ([], [])


def test_a_version_in_use_waits_in_old(plugbox, env):
    """A supervisor holds LOCK_SH on a plugin directory while a worker runs
    from it: the replaced version stays, whole, until that lock goes; the
    next install or remove deletes it."""
    plugins, wheels = env
    install_ok(plugbox, plugins, make_wheel(wheels / "1.whl"))
    held = os.open(plugins / "demo", os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(held, fcntl.LOCK_SH)
        out = install_ok(plugbox, plugins, make_wheel(wheels / "2.whl", version="2.0", answer="v2"))
        assert out == (f"installed demo 2.0 (upgraded from 1.0); the old version stays in {plugins}/.plugbox/old "
                       "until the worker using it ends")
        (kept,) = meta_state(plugins)[1]
        assert kept.startswith("demo.")
        assert "'v1'" in (plugins / ".plugbox" / "old" / kept / "demo" / "api.py").read_text()
        assert hello(plugbox, plugins) == '"v2"'
        # still held: remove moves 2.0 away, and keeps 1.0 too
        held2 = os.open(plugins / "demo", os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(held2, fcntl.LOCK_SH)
        cp = plugbox.run(["remove", "--plugins", plugins, "demo"])
        assert cp.returncode == EXIT_OK, explain(cp)
        assert cp.stdout == (f"removed demo; its files stay in {plugins}/.plugbox/old until the worker using "
                             "them ends\n")
        assert len(meta_state(plugins)[1]) == 2
        os.close(held2)
    finally:
        os.close(held)
    install_ok(plugbox, plugins, make_wheel(wheels / "3.whl", version="3.0"))
    assert meta_state(plugins) == ([], [])


def test_remove(plugbox, env):
    plugins, wheels = env
    install_ok(plugbox, plugins, make_wheel(wheels / "1.whl"))
    cp = plugbox.run(["remove", "--plugins", plugins, "demo"])
    assert (cp.returncode, cp.stdout, cp.stderr) == (EXIT_OK, "removed demo\n", ""), explain(cp)
    assert entries(plugins) == [".plugbox"]
    assert meta_state(plugins) == ([], [])
    cp = plugbox.list(plugins)
    assert (cp.returncode, cp.stdout) == (EXIT_OK, ""), explain(cp)
    assert_one_error_line(plugbox.run(["remove", "--plugins", plugins, "demo"]), "no plugin 'demo'")


def test_remove_never_follows_symlinks(plugbox, env, scratch):
    """A plugin directory holding a symlink to a directory outside, and
    one that is itself a symlink: remove deletes the links, not what they
    point to."""
    plugins, wheels = env
    outside = scratch / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep\n")
    install_ok(plugbox, plugins, make_wheel(wheels / "1.whl"))
    os.symlink(outside, plugins / "demo" / "demo" / "link")
    os.symlink(outside, plugins / "linked")
    for name in ("demo", "linked"):
        cp = plugbox.run(["remove", "--plugins", plugins, name])
        assert cp.returncode == EXIT_OK, explain(cp)
    assert (outside / "keep.txt").read_text() == "keep\n"
    assert entries(plugins) == [".plugbox"] and meta_state(plugins) == ([], [])


# ---- installing a directory -------------------------------------------------------

def test_install_directory(plugbox, env, paths):
    plugins, _ = env
    out = install_ok(plugbox, plugins, paths.plugins / "install" / "dirplug")
    assert out == "installed dirplug 0.3"
    cp = plugbox.call(plugins, "dirplug", "answer")
    assert (cp.returncode, cp.stdout) == (EXIT_OK, '"from a directory"\n'), explain(cp)
    out = install_ok(plugbox, plugins, paths.plugins / "install" / "dirplug")
    assert out == "installed dirplug 0.3 (reinstalled)"
    assert meta_state(plugins) == ([], [])


def make_source(scratch, name="srcplug"):
    src = scratch / name
    src.mkdir()
    (src / "__init__.py").write_text("import plugbox\n\n@plugbox.export\ndef answer():\n"
                                     "    from . import data\n    return data.TEXT\n")
    (src / "data.py").write_text("TEXT = 'copied'\n")
    return src


def test_directory_symlinks(plugbox, env, scratch):
    """A symlink inside the directory is copied as the file it names; one
    that leads out is refused, as are a fifo and a loop."""
    plugins, _ = env
    src = make_source(scratch)
    os.symlink("data.py", src / "alias.py")
    out = install_ok(plugbox, plugins, src, "--name", "copied")
    assert out == "installed copied"
    alias = plugins / "copied" / "alias.py"
    assert not alias.is_symlink() and alias.read_text() == "TEXT = 'copied'\n"
    cp = plugbox.call(plugins, "copied", "answer")
    assert (cp.returncode, cp.stdout) == (EXIT_OK, '"copied"\n'), explain(cp)
    for what, make, expected in [
            ("out", lambda: os.symlink("/etc/passwd", src / "passwd"), "'passwd': a symlink that leads out"),
            ("up", lambda: os.symlink("../secret", src / "up"), "'up': a symlink that leads out"),
            ("fifo", lambda: os.mkfifo(src / "pipe"), "'pipe': a fifo"),
            ("loop", lambda: os.symlink(".", src / "self"), "'self': a symlink loop")]:
        (scratch / "secret").write_text("s\n")
        make()
        cp = install(plugbox, plugins, src, "--name", "copied")
        assert_one_error_line(cp, f"cannot install {src}: ", expected)
        for leftover in ("passwd", "up", "pipe", "self"):
            if os.path.lexists(src / leftover):
                os.unlink(src / leftover)
    assert sorted(os.listdir(plugins / "copied")) == ["__init__.py", "alias.py", "data.py"]
    assert meta_state(plugins) == ([], [])


def test_directory_name_checks(plugbox, env, scratch):
    plugins, _ = env
    bad = make_source(scratch, "bad.name")
    assert_one_error_line(install(plugbox, plugins, bad), "'bad.name' is not a plugin name", "--name")
    src = make_source(scratch)
    (src / "plugin.toml").write_text('name = "srcplug"\nversion = "4.2"\n')
    assert install_ok(plugbox, plugins, src) == "installed srcplug 4.2"
    assert_one_error_line(install(plugbox, plugins, src, "--name", "renamed"),
                          "plugin.toml names the plugin 'srcplug', but it installs as 'renamed'")


def test_symlinked_source_is_refused(plugbox, env, scratch):
    """A plugin directory named through a symlink, at its end or anywhere on
    its path, is refused with one line: the worker would be given whatever
    the link named at the moment of the bind."""
    plugins, _ = env
    src = make_source(scratch)
    os.symlink(src, scratch / "link")
    os.symlink(scratch, scratch / "via")
    for given in (scratch / "link", scratch / "via" / "srcplug"):
        cp = install(plugbox, plugins, given, "--name", "linked")
        assert_one_error_line(cp, f"cannot install {given}: its path goes through a symlink")
    assert entries(plugins) == []
    # The real path, and a relative one with "..", install.
    assert install_ok(plugbox, plugins, src, "--name", "linked") == "installed linked"
    cp = subprocess.run([plugbox.exe, "install", "--plugins", str(plugins), "--name", "linked",
                         "../" + src.name + "/."], cwd=src, env=plugbox.env, capture_output=True, text=True,
                        timeout=scaled(60))
    assert cp.returncode == EXIT_OK, explain(cp)


def test_modes_are_never_widened(plugbox, env, scratch):
    """The installed copy is 0644/0755; a file or directory that its owner
    kept from others in the source is refused, naming it, not published."""
    plugins, _ = env
    src = make_source(scratch)
    (src / "private.key").write_text("secret\n")
    os.chmod(src / "private.key", 0o604)       # others may read it, the group may not
    cp = install(plugbox, plugins, src, "--name", "modes")
    assert_one_error_line(cp, "'private.key': mode 0604", "never widens")
    os.unlink(src / "private.key")
    (src / "sub").mkdir()
    (src / "sub" / "x.py").write_text("")
    os.chmod(src / "sub", 0o751)
    cp = install(plugbox, plugins, src, "--name", "modes")
    assert_one_error_line(cp, "'sub': mode 0751")
    os.chmod(src / "sub", 0o755)
    assert install_ok(plugbox, plugins, src, "--name", "modes") == "installed modes"
    for path in (plugins / "modes").rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (0o755 if path.is_dir() else 0o644), path
    assert "modes" in entries(plugins)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to become uid 65534")
def test_unprivileged_operator_keeps_a_private_key_private(plugbox, env, scratch):
    """As an ordinary user the unpacker runs as that user and could read
    the user's own 0600 files: a symlinked "plugin directory" pointing at
    them, or a directory holding one, is refused, and nothing is published."""
    plugins, _ = env
    os.chown(plugins, 65534, 65534)
    private = scratch / "private"
    private.mkdir(mode=0o700)
    (private / "__init__.py").write_text("")
    (private / "id.key").write_text("SECRET\n")
    os.chmod(private / "id.key", 0o600)
    os.symlink(private, scratch / "plugin")
    for p in (private, private / "__init__.py", private / "id.key"):
        os.chown(p, 65534, 65534, follow_symlinks=False)
    args = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", plugbox.exe]

    def install_as_user(source):
        return subprocess.run([*args, "install", "--plugins", str(plugins), "--name", "stolen", str(source)],
                              env=plugbox.env, capture_output=True, text=True, timeout=scaled(60))
    cp = install_as_user(scratch / "plugin")
    assert cp.returncode == EXIT_USAGE and "its path goes through a symlink" in cp.stderr, cp.stderr
    os.chmod(private, 0o755)
    cp = install_as_user(private)
    if cp.returncode == EXIT_DIED and "namespaces" in cp.stderr:
        pytest.skip("no unprivileged user namespaces here: " + cp.stderr.strip())
    assert cp.returncode == EXIT_USAGE and "'id.key': mode 0600" in cp.stderr, cp.stderr
    assert list(plugins.rglob("id.key")) == [] and not (plugins / "stolen").exists()


def _renameat2_exchange():
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    at_fdcwd, rename_exchange = -100, 2

    def exchange(a, b):
        if libc.renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) < 0:
            raise OSError(ctypes.get_errno(), "renameat2")
    return exchange


def test_source_swapped_for_a_symlink_never_copies_the_secret(plugbox, env, scratch):
    """An attacker flips the plugin directory with a symlink to a private
    directory while plugbox installs it, as fast as it can: each install
    copies the plugin or refuses; the secret is never copied."""
    plugins, _ = env
    private = scratch / "private"
    private.mkdir()
    (private / "__init__.py").write_text("")
    (private / "secret.txt").write_text("SECRET\n")
    attacker = scratch / "attacker"
    attacker.mkdir()
    src = make_source(attacker, "plug")
    os.symlink(private, attacker / "alt")
    exchange = _renameat2_exchange()
    stop = threading.Event()
    flips = [0]

    def flip():
        while not stop.is_set():
            exchange(src, attacker / "alt")
            flips[0] += 1

    flipper = threading.Thread(target=flip, daemon=True)
    flipper.start()
    outcomes = {"installed": 0, "refused": 0}
    try:
        for _ in range(25):
            cp = install(plugbox, plugins, src, "--name", "raced")
            leaked = [p for p in plugins.rglob("secret.txt")]
            assert leaked == [], f"the secret was copied: {leaked}" + explain(cp)
            if cp.returncode == EXIT_OK:
                outcomes["installed"] += 1
                assert sorted(os.listdir(plugins / "raced")) == ["__init__.py", "data.py"], explain(cp)
            else:
                outcomes["refused"] += 1
                assert_one_error_line(cp, "cannot install")
    finally:
        stop.set()
        flipper.join()
    assert flips[0] > 100, flips
    assert meta_state(plugins) == ([], [])


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to become uid 65534")
def test_unprivileged_install(plugbox, env, scratch):
    """As an ordinary user (a user namespace instead of root's identity
    change), with the files owned by that user."""
    plugins, wheels = env
    os.chown(plugins, 65534, 65534)
    wheel = make_wheel(wheels / "1.whl")
    os.chmod(wheel, 0o644)
    args = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", plugbox.exe]
    cp = subprocess.run([*args, "install", "--plugins", str(plugins), str(wheel)], env=plugbox.env,
                        capture_output=True, text=True, timeout=scaled(60))
    if cp.returncode == EXIT_DIED and "namespaces" in cp.stderr:
        pytest.skip("no unprivileged user namespaces here: " + cp.stderr.strip())
    assert (cp.returncode, cp.stdout) == (EXIT_OK, "installed demo 1.0\n"), cp.stderr
    assert os.stat(plugins / "demo" / "demo" / "api.py").st_uid == 65534
    cp = subprocess.run([*args, "remove", "--plugins", str(plugins), "demo"], env=plugbox.env,
                        capture_output=True, text=True, timeout=scaled(60))
    assert (cp.returncode, cp.stdout) == (EXIT_OK, "removed demo\n"), cp.stderr


def test_a_plugin_named_install_never_runs_under_install_policy(plugbox, env):
    """install.policy kills socket(); default returns EACCES. A plugin that
    happens to be called `install` (a wheel named so) gets default."""
    plugins, _ = env
    plugin = plugins / "install"
    plugin.mkdir()
    (plugin / "__init__.py").write_text(
        "import errno, socket\nimport plugbox\n\n@plugbox.export\ndef probe():\n"
        "    try:\n        socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()\n"
        "    except OSError as e:\n        return errno.errorcode[e.errno]\n    return 'opened'\n")
    for p in (plugins, plugin, plugin / "__init__.py"):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    assert (Path(os.environ["PLUGBOX_POLICIES"]) / "install.policy").is_file()
    cp = plugbox.call(plugins, "install", "probe")
    assert cp.returncode == EXIT_OK, explain(cp)
    assert cp.stdout.strip() == '"EACCES"'
