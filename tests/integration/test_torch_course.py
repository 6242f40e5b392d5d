"""A tiny PyTorch assignment (tests/fixtures/torch_course) graded end to end through the CLI:
tensors by value, modules/optimizers/DataLoaders as handles, state_dict and gradients back as
arrays, a course probe; authoring mistakes of the suite are harness errors (exit 2)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from course_cli import ag

from autograder.grading import results

pytest.importorskip("torch")

COURSE = Path(__file__).resolve().parent.parent / "fixtures" / "torch_course"
MAX = 5


@pytest.fixture
def course(tmp_path: Path) -> Path:
    root = tmp_path / "course"
    shutil.copytree(COURSE, root)
    return root


def grade(course: Path, submission: str, isolation: str) -> tuple[int, dict, str]:
    proc = ag("grade", "t1", submission, "-o", "r.json", "--isolation", isolation, cwd=course)
    data = json.loads((course / "r.json").read_text())
    results.validate(data)
    return proc.returncode, data, proc.stdout + proc.stderr


@pytest.mark.parametrize("isolation", ["sandbox", "none"])
def test_reference_solution_gets_full_marks(course, isolation):
    code, data, out = grade(course, "solutions/t1_torch", isolation)
    assert code == 0, out
    assert data["score"] == MAX, json.dumps(data["tests"], indent=1)
    assert data["extra_data"]["isolation"] == isolation


@pytest.mark.parametrize("isolation", ["sandbox", "none"])
def test_summing_loss_loses_the_loss_and_training_points(course, isolation):
    code, data, out = grade(course, "buggy", isolation)
    assert code == 0, out
    failed = {t["name"].split(" ")[0] for t in data["tests"] if t["score"] == 0}
    assert failed == {"mse_loss", "train_step"}, json.dumps(data["tests"], indent=1)
    assert data["score"] == MAX - 2


AUTHORING_BUGS = {
    "module": 'student.module("torch")',
    "probe": 'student.probe("nonexistent", 1)',
    "tensor": 'student.tensor([1, 2], "int64", requires_grad=True)',
}


@pytest.mark.parametrize("isolation", ["sandbox", "none"])
@pytest.mark.parametrize("bug", sorted(AUTHORING_BUGS))
def test_authoring_mistakes_are_harness_errors_not_student_errors(course, isolation, bug):
    (course / "reference_tests" / "t1_torch" / "hidden" / "test_typo.py").write_text(
        f"def test_typo(student):\n    {AUTHORING_BUGS[bug]}\n")
    code, data, out = grade(course, "solutions/t1_torch", isolation)
    assert code == 2, out
    assert data["extra_data"]["harness_error"] is True
    staff = json.dumps(data)
    assert "AuthoringError" in staff and "Your code raised" not in staff


def test_broken_course_probe_module_is_a_harness_error(course):
    (course / "solutions" / "t1_torch" / "probes.py").write_text("raise RuntimeError('oops')\n")
    code, data, out = grade(course, "solutions/t1_torch", "sandbox")
    assert code == 2, out
    assert data["score"] == 0 and "failed to import: RuntimeError: oops" in json.dumps(data)


def test_template_ships_the_course_probes(course):
    proc = ag("template", "t1", cwd=course)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    folder = course / "assignments" / "t1_torch"
    assert (folder / "probes.py").read_bytes() == \
        (course / "solutions" / "t1_torch" / "probes.py").read_bytes()
    assert 'probes = "probes.py"' in (folder / "assignment.toml").read_text()
    assert ag("template", "t1", "--check", cwd=course).returncode == 0
    (folder / "probes.py").unlink()
    assert ag("template", "t1", "--check", cwd=course).returncode == 1
