"""The pytest job of the CI examples (examples/ci/, docs/ci.md), run for
real: the GitLab job's and the GitHub step's command, on a copy of the
example beside the shipped policies, passes (the plugin's own tests inside
its worker, the project's tests through plugbox_call) and writes the JUnit
report the job hands to the CI system. (tests/integration/test_ci_examples.py
runs the plugbox commands; the package is importable only here.)"""

import os
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
import yaml

from conftest import _readable_tree


def pytest_lines(example):
    doc = yaml.safe_load(example.read_text())
    if "jobs" in doc:
        lines = [s["run"] for job in doc["jobs"].values() for s in job["steps"] if "run" in s]
    else:
        lines = [line for job in doc.values() if isinstance(job, dict) for line in job.get("script", [])]
    return [line for line in lines if line.startswith("pytest ")]


@pytest.mark.parametrize("example", ["gitlab-ci.yml", "github-workflow.yml"])
def test_the_plugin_tests_job_runs(scratch, paths, example):
    src = paths.srcdir.parent / "examples" / "ci"
    work = scratch / "ci"
    shutil.copytree(src, work, ignore=shutil.ignore_patterns("__pycache__"))
    for policy in paths.shipped_policies.glob("*.policy"):
        shutil.copy(policy, work / "policies" / policy.name)
    _readable_tree(scratch)
    lines = pytest_lines(src / example)
    assert len(lines) == 1, lines
    words = shlex.split(lines[0])
    argv = [sys.executable, "-m", *words, "-p", "no:cacheprovider"]
    cp = subprocess.run(argv, cwd=work, text=True, capture_output=True, timeout=300)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    report = work / words[words.index("--junitxml") + 1]
    suite = ET.parse(report).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("6", "0", "0")
    # the plugin's own tests ran inside its worker, the project's on the host
    cases = {(c.get("classname"), c.get("name")) for c in suite.iter("testcase")}
    assert ("myplugin.tests.test_summarize", "test_the_policy_refuses_unix_sockets") in cases, cases
    assert ("tests.test_myplugin", "test_summarize") in cases, cases
    # GitLab reads the report the job names
    if example == "gitlab-ci.yml":
        doc = yaml.safe_load((src / example).read_text())
        assert doc["plugin-tests"]["artifacts"]["reports"]["junit"] == words[words.index("--junitxml") + 1]
