"""`plugbox list` without a worker per plugin: one sandboxed scan reads
every plugin's metadata (pb_supervisor_discover); `--workers` asks each
plugin's worker instead, as list did before."""

import json
import os
import time

from pbtest import EXIT_OK, EXIT_USAGE, explain


def _plugins(root, count):
    """count path-layout plugins, each with two entry points of demo.hooks."""
    for i in range(count):
        name = f"p{i:02d}"
        (root / name / name).mkdir(parents=True)
        (root / name / name / "__init__.py").write_text("def run():\n    return 1\n")
        info = root / name / f"{name}-1.{i}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.{i}\n")
        (info / "entry_points.txt").write_text(f"[demo.hooks]\nrun = {name}:run\nalso = {name}:run\n")
    for path in [root, *root.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    return root


def test_list_starts_no_worker(plugbox, scratch, policies_with):
    """With every worker's start made to fail (default.policy does not
    parse), list still lists every plugin: it started none. --workers
    starts them, and fails."""
    plugins = _plugins(scratch / "plugins", 28)
    pol = policies_with(default="@this is not a policy\n")
    cp = plugbox.run(["list", "--plugins", plugins, "--policies", pol])
    assert cp.returncode == EXIT_OK, explain(cp)
    rows = [line.split("\t") for line in cp.stdout.splitlines()]
    assert len(rows) == 28
    assert rows[3] == ["p03", "path", "1.3", "demo.hooks:also,demo.hooks:run"] or \
        rows[3] == ["p03", "path", "1.3", "demo.hooks:run,demo.hooks:also"]
    cp = plugbox.run(["list", "--plugins", plugins, "--policies", pol, "--json"])
    listed = json.loads(cp.stdout)
    assert [p["name"] for p in listed] == [f"p{i:02d}" for i in range(28)]
    assert all(p["error"] is None and len(p["entry_points"]) == 2 for p in listed)
    cp = plugbox.run(["list", "--plugins", plugins, "--policies", pol, "--workers"])
    assert cp.returncode == EXIT_USAGE and "default.policy" in cp.stderr, explain(cp)


def test_list_is_faster_than_a_worker_each(plugbox, scratch):
    plugins = _plugins(scratch / "plugins", 28)
    t0 = time.monotonic()
    scanned = plugbox.run(["list", "--plugins", plugins])
    scan_time = time.monotonic() - t0
    t0 = time.monotonic()
    described = plugbox.run(["list", "--plugins", plugins, "--workers"])
    worker_time = time.monotonic() - t0
    assert scanned.returncode == described.returncode == EXIT_OK, explain(described)
    assert scanned.stdout == described.stdout
    assert scan_time * 2 < worker_time, f"scan {scan_time:.2f} s, a worker each {worker_time:.2f} s"


def test_list_names_a_plugin_with_bad_metadata_and_sanitises_plugin_text(plugbox, scratch):
    plugins = _plugins(scratch / "plugins", 2)
    (plugins / "evil").mkdir()
    (plugins / "evil" / "plugin.toml").write_text('version = "1\\u001b[2J\\tX"\n')
    (plugins / "broken").mkdir()
    (plugins / "broken" / "plugin.toml").write_text("x = " + "[" * 50_000 + "\n")
    (plugins / "huge").mkdir()   # valid TOML, but 3 MiB is no manifest: refused unread
    (plugins / "huge" / "plugin.toml").write_text("description = '" + "a" * (3 << 20) + "'\n")
    for path in [plugins / "evil", plugins / "broken", plugins / "huge", *plugins.glob("*/plugin.toml")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    cp = plugbox.run(["list", "--plugins", plugins])
    assert cp.returncode == EXIT_USAGE, explain(cp)
    assert "\x1b" not in cp.stdout and "evil\tpackage" not in cp.stdout
    assert "evil\tpath\t1\\x1b[2J" in cp.stdout, cp.stdout
    assert "plugbox: plugin 'broken': " in cp.stderr and "nested too deeply" in cp.stderr
    assert "plugbox: plugin 'huge': " in cp.stderr and "larger than 1048576 bytes" in cp.stderr
    assert "p00\tpath\t1.0\t" in cp.stdout
