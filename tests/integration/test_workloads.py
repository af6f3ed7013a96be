"""The shipped default policy against the workloads python.policy was measured on."""
import json

from pbtest import explain


def test_measured_workloads_run_under_the_default_policy(plugbox, paths):
    cp = plugbox.run(["call", "--plugins", str(paths.plugins / "features"), "workloads", "run_all"])
    assert cp.returncode == 0, explain(cp)
    assert json.loads(cp.stdout) == {
        "json": "x", "re": "42", "toml": 3, "asyncio": 5, "ctypes": 5,
        "sha256": "2d711642", "ssl": True, "sqlite": 45, "threads": [4950, 9, 16],
        "random": True, "zoneinfo": "UTC", "traceback": True, "bytearray_mib": 64,
    }
    assert "logging works" in cp.stderr
