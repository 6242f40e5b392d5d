"""`grade` as root requires protections and stops (exit 2, staff message) without them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from course_cli import ag

DOCKER_DEFAULT = Path(__file__).resolve().parents[1] / "support" / "docker_default.py"
REPO = Path(__file__).resolve().parents[2]

needs_root = pytest.mark.skipif(os.getuid() != 0, reason="protections are required only as root")


def _grade(course: Path, *extra: str, docker: bool = False) -> tuple[subprocess.CompletedProcess[str], dict]:
    out = course / "out" / "results.json"
    cmd = [sys.executable, "-m", "autograder", "grade", "a9", str(course / "solutions" / "a9_tiny"),
           "-o", str(out), "--course", str(course), *extra]
    if docker:
        cmd = [sys.executable, str(DOCKER_DEFAULT), "--reachable", sys.executable,
               "--reachable", str(REPO), "--", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    return proc, json.loads(out.read_text())


@needs_root
def test_a_required_protection_that_cannot_be_had_stops_the_grading(course: Path):
    """docker-default: no namespaces; --require namespaces cannot be met: exit 2, every
    test at 0, the staff message names the protection and the fix."""
    proc, data = _grade(course, "--require", "namespaces", docker=True)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert data["score"] == 0 and data["tests"] and data["extra_data"]["harness_error"]
    assert "refusing to grade" in proc.stdout and "namespaces" in proc.stdout, proc.stdout
    staff = [t["output"] for t in data["tests"] if "staff" in t["name"].lower()] or [json.dumps(data)]
    assert "--cap-add SYS_ADMIN" in "".join(staff)


@needs_root
def test_docker_default_grades_with_the_other_mechanisms(course: Path):
    """No namespaces, yet the defaults hold: hidden material by file modes, no network by
    the seccomp filter, a uid of its own; the solution gets full marks."""
    proc, data = _grade(course, docker=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert data["score"] == sum(t["max_score"] for t in data["tests"]) > 0
    active = {p["name"]: p["detail"] for p in data["extra_data"]["protections"] if p["active"]}
    assert "file permissions" in active["hidden-paths"] and "AF_UNIX" in active["network"]
    assert not os.stat(course).st_mode & 0o007  # the course is closed to other users


def test_unknown_protection_names_are_usage_errors(course: Path):
    proc = ag("grade", "a9", str(course / "solutions" / "a9_tiny"), "-o",
              str(course / "r.json"), "--course", str(course), "--require", "netwrk", cwd=course)
    assert proc.returncode in (2, 3), proc.stdout + proc.stderr
    assert "unknown protection 'netwrk'" in proc.stdout + proc.stderr


def test_allow_missing_in_the_config_is_checked(course: Path):
    toml = course / "reference_tests" / "a9_tiny" / "assignment.toml"
    toml.write_text(toml.read_text() + '\n[sandbox]\nallow_missing = ["no-netwrk"]\n')
    proc = ag("grade", "a9", str(course / "solutions" / "a9_tiny"), "-o",
              str(course / "r.json"), "--course", str(course), cwd=course)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "unknown protection 'no-netwrk'" in proc.stdout + proc.stderr


STRAY_READER = '''
def relu(x):
    """Reads a copy of the course that lies elsewhere on the host (the grader does not know
    it); relu is right only if the copy could be read."""
    try:
        with open(STRAY) as f:
            f.read()
    except OSError:
        return x * 0 - 1
    return np.maximum(x, 0)
'''


@needs_root
@pytest.mark.parametrize("docker", [False, True], ids=["full", "docker-default"])
def test_a_copy_of_the_course_elsewhere_on_the_host_stays_unseen(course: Path, docker: bool):
    """Only the system folders, the interpreter and the worker's own folder are readable:
    by the mount namespace's allow-list, or by Landlock where there is none. The control
    (in-process) reads the copy and gets the points."""
    stray_dir = Path(f"/srv/agadv-stray-{uuid.uuid4().hex}")
    stray_dir.mkdir(parents=True, mode=0o755)
    try:
        stray = stray_dir / "ops.py"
        stray.write_text("# a stray copy of the solution\n")
        stray.chmod(0o644)
        sol = course / "solutions" / "a9_tiny"
        ops = (sol / "ops.py").read_text()
        head, _, rest = ops.partition("\ndef relu(")
        (sol / "ops.py").write_text(head + f"\nSTRAY = {str(stray)!r}\n" + STRAY_READER
                                    + "\n\n" + rest[rest.index("\nclass Doubler"):])
        proc, data = _grade(course, docker=docker)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        relu = [t for t in data["tests"] if t["name"].startswith("relu")]
        assert relu and all(t["score"] == 0 for t in relu), relu
        out = course / "control.json"
        control = ag("grade", "a9", str(sol), "-o", str(out), "--course", str(course),
                     "--isolation", "none", cwd=course)
        assert control.returncode == 0, control.stdout + control.stderr
        scores = [t["score"] for t in json.loads(out.read_text())["tests"]
                  if t["name"].startswith("relu")]
        assert scores and all(s > 0 for s in scores), scores
    finally:
        shutil.rmtree(stray_dir, ignore_errors=True)
