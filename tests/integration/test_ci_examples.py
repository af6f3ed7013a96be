"""The CI examples of docs/ci.md (examples/ci/): the GitLab and GitHub jobs
are valid YAML of the shape each system reads, every JUnit report a job
writes is the one it hands to the CI system, and every plugbox command in
them runs for real on the example's files and passes."""

import os
import shlex
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from pbtest import explain
from test_selftest import kit  # noqa: F401 (a fixture)


def example_dir(paths):
    return paths.srcdir.parent / "examples" / "ci"


def commands(doc, github):
    """(job, command line) for every step that runs plugbox."""
    out = []
    if github:
        for name, job in doc["jobs"].items():
            for step in job["steps"]:
                if "run" in step:
                    out.append((name, step["run"]))
    else:
        for name, job in doc.items():
            if isinstance(job, dict) and "script" in job:
                out.extend((name, line) for line in job["script"])
    return [(job, line) for job, line in out if "plugbox " in line]


def junit_arg(line):
    words = shlex.split(line)
    return words[words.index("--junit") + 1]


def test_gitlab_job_shape(paths):
    doc = yaml.safe_load((example_dir(paths) / "gitlab-ci.yml").read_text())
    assert doc["stages"] == ["test"]
    for name, line in commands(doc, github=False):
        job = doc[name]
        assert job["stage"] in doc["stages"]
        # the report the job writes is the one GitLab reads
        assert job["artifacts"]["reports"]["junit"] == junit_arg(line)
        assert job["artifacts"]["when"] == "always"
    assert {line.split()[1] for _, line in commands(doc, github=False)} == {"policy", "selftest"}


def test_github_workflow_shape(paths):
    doc = yaml.safe_load((example_dir(paths) / "github-workflow.yml").read_text())
    # YAML 1.1 reads the key `on` as True
    assert set(doc.get("on", doc.get(True))) == {"push", "pull_request"}
    job = doc["jobs"]["isolation"]
    assert job["runs-on"] and job["steps"][0]["uses"].startswith("actions/checkout@")
    report = [s for s in job["steps"] if "with" in s][0]
    assert report["if"] == "always()" and report["with"]["report_paths"] == "*.xml"
    assert all(junit_arg(line).endswith(".xml") for _, line in commands(doc, github=True))


@pytest.mark.parametrize("example,github", [("gitlab-ci.yml", False), ("github-workflow.yml", True)])
def test_every_command_runs(kit, paths, example, github):  # noqa: F811
    """The example's commands on a copy of examples/ci beside the shipped
    policies (as an operator's checkout would hold them); the selftest with
    --only-probes, the operator's probe alone, to keep the test short."""
    work = kit.root / f"ci-example-{github}"
    shutil.copytree(example_dir(paths), work)
    for policy in kit.policies.glob("*.policy"):
        shutil.copy(policy, work / "policies" / policy.name)
    share = kit.root / "share"
    if not share.exists():
        (share / "policies").mkdir(parents=True)
        shutil.copy(paths.srcdir.parent / "policies" / "kill-list.expect", share / "policies")
    for dirpath, dirnames, filenames in os.walk(kit.root):
        os.chmod(dirpath, 0o1777 if dirpath == str(kit.root / "tmp") else 0o755)
        for f in filenames:
            if not os.path.islink(os.path.join(dirpath, f)):
                os.chmod(os.path.join(dirpath, f), 0o755)
    doc = yaml.safe_load((example_dir(paths) / example).read_text())
    ran = 0
    for _, line in commands(doc, github):
        words = shlex.split(line.replace("$PLUGBOX_SHARE", str(share)))
        if words[0] == "sudo":
            words = words[1:]
        assert words[0] == "plugbox"
        words[0] = kit.plugbox
        if words[1] == "selftest":
            words.append("--only-probes")
        cp = subprocess.run(words, cwd=work, env=kit.env(), text=True, capture_output=True, timeout=300)
        cp.args = ["plugbox", *words[1:]]
        assert cp.returncode == 0, explain(cp)
        suite = ET.parse(work / junit_arg(line)).getroot().find("testsuite")
        assert suite.get("failures") == "0" and int(suite.get("tests")) >= 1
        ran += 1
    assert ran == 2
