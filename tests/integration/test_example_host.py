"""The example host program in C (examples/host/host.c): built by make
against libplugbox, and built again here the way a user builds it, with
pkg-config, then run on the bundled example plugins."""

import os
import subprocess
from pathlib import Path

from pbtest import SANITIZE_CFLAGS

TOP_SRC = Path(os.environ.get("PB_TOP_SRCDIR", Path(__file__).resolve().parents[2]))
TOP_BUILD = Path(os.environ.get("PB_TOP_BUILDDIR", "."))
EXAMPLES = TOP_SRC / "examples"


def run_host(binary, *args, env=None):
    proc = subprocess.run([str(binary), str(EXAMPLES / "plugins"), *map(str, args)],
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_example_host_calls_plugins_and_answers_a_granted_host_call():
    out = run_host(TOP_BUILD / "examples" / "host" / "host", EXAMPLES / "policies")
    assert "host: plug1 asked to shout 'ada'\n" in out
    assert 'plug1.greet_loudly("ada") -> "Hello, ADA!"\n' in out
    # both vendored versions of one dependency, side by side
    assert 'plug1.requests_version() -> "2.2.0"\n' in out
    assert 'plug2.requests_version() -> "2.3.0"\n' in out
    assert "evil.requests_version() -> not_found error: " in out


def test_without_the_grant_the_plugin_gets_a_permission_error():
    out = run_host(TOP_BUILD / "examples" / "host" / "host")
    assert "asked to shout" not in out
    line = next(l for l in out.splitlines() if l.startswith("plug1.greet_loudly"))
    assert line.startswith('plug1.greet_loudly("ada") -> exception error: ')
    assert "may not call host function 'shout'" in line


def test_a_user_builds_the_example_with_pkg_config(tmp_path):
    env = dict(os.environ, PKG_CONFIG_PATH=str(TOP_BUILD))
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "plugbox"], env=env,
                           capture_output=True, text=True, check=True).stdout.split()
    assert f"-I{TOP_SRC / 'include'}" in flags and "-lplugbox" in flags
    binary = tmp_path / "host"
    cc = os.environ.get("PB_CC", "cc").split()
    # A build with --enable-sanitizers has an instrumented library: so must the program be.
    subprocess.run([*cc, *SANITIZE_CFLAGS, "-std=c11", "-Wall", "-Wextra", "-Werror",
                    str(EXAMPLES / "host" / "host.c"), *flags, "-o", str(binary)], check=True)
    out = run_host(binary, EXAMPLES / "policies",
                   env=dict(os.environ, LD_LIBRARY_PATH=str(TOP_BUILD / ".libs")))
    assert 'plug1.greet_loudly("ada") -> "Hello, ADA!"\n' in out
