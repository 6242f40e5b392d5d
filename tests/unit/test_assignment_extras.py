"""An assignment's own extra (a6: dvc, wandb) reaches its student kit, its Gradescope
bundle and the grading image; other assignments do not get it."""

from __future__ import annotations

import tomllib
from pathlib import Path

from autograder.config import AssignmentConfig
from autograder.packaging.gradescope import EXTRAS, assignment_extras, extras_for
from autograder.packaging.student_kit import requirement_for

ROOT = Path(__file__).resolve().parents[2]


def test_extras_named_by_an_assignment_id_are_found() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "a6" in assignment_extras(ROOT)
    assert set(assignment_extras(ROOT)) <= set(declared["optional-dependencies"])
    assert "staff" not in assignment_extras(ROOT) and "torch" not in assignment_extras(ROOT)


def test_bundle_extras_add_only_the_assignments_own() -> None:
    assert extras_for("a6", ROOT) == f"{EXTRAS},a6"
    assert extras_for("a2", ROOT) == EXTRAS


def test_student_kit_requirement_names_the_assignments_extra() -> None:
    a6 = AssignmentConfig(id="a6", title="t", modules=("train",), preload=("numpy", "torch"))
    a1 = AssignmentConfig(id="a1", title="t", modules=("layers",))
    assert requirement_for(a6, "0.1.0") == "dl-autograder[a6,torch]==0.1.0"
    assert requirement_for(a1, "0.1.0") == "dl-autograder==0.1.0"


def test_pins_of_the_a6_tools() -> None:
    pins = (ROOT / "constraints.txt").read_text().splitlines()
    assert any(p.startswith("dvc==") for p in pins) and any(p.startswith("wandb==") for p in pins)
