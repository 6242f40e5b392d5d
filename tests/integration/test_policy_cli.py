"""`grade` as root requires protections and stops (exit 2, staff message) without them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
