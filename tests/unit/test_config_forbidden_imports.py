"""assignment.toml's forbidden_imports: read, checked, contradictions refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from autograder.config import AssignmentConfig
from autograder.errors import CourseError

REPO = Path(__file__).resolve().parents[2]


def load(tmp_path: Path, lines: str) -> AssignmentConfig:
    path = tmp_path / "assignment.toml"
    path.write_text(f'[assignment]\nid = "c1"\ntitle = "c"\nmodules = ["layers"]\n{lines}\n')
    return AssignmentConfig.load(path)


def test_default_is_nothing_forbidden(tmp_path: Path) -> None:
    assert load(tmp_path, "").forbidden_imports == ()


def test_names_are_read_in_order_without_duplicates(tmp_path: Path) -> None:
    cfg = load(tmp_path, 'forbidden_imports = ["torch", "scipy.special", "torch"]')
    assert cfg.forbidden_imports == ("torch", "scipy.special")


def test_a1_is_numpy_only() -> None:
    cfg = AssignmentConfig.load(REPO / "reference_tests" / "a1_numpy_nn" / "assignment.toml")
    assert {"torch", "sklearn", "scipy", "tensorflow", "jax", "keras", "pandas"} <= set(cfg.forbidden_imports)
    assert "numpy" not in cfg.forbidden_imports


@pytest.mark.parametrize(("value", "message"), [
    ('"torch"', "forbidden_imports = 'torch'; give a list of package names, e.g. "
                'forbidden_imports = ["torch", "scipy.special"]'),
    ("[3]", "forbidden_imports entry 3 is not a module name"),
    ('["torch.*"]', "forbidden_imports entry 'torch.*' is not a module name; write dotted names"),
    ('["scikit-learn"]', "forbidden_imports entry 'scikit-learn' is not a module name"),
    ('[""]', "forbidden_imports entry '' is not a module name"),
    ('["scipy."]', "forbidden_imports entry 'scipy.' is not a module name"),
    ('preload = ["numpy", "torch"]\nforbidden_imports = ["torch"]',
     "preload entry 'torch' is forbidden by forbidden_imports entry 'torch'; remove one of the two"),
    ('forbidden_imports = ["layers"]',
     "modules entry 'layers' is forbidden by forbidden_imports entry 'layers'"),
])
def test_bad_values_name_the_file_the_value_and_the_fix(tmp_path: Path, value: str, message: str) -> None:
    line = value if "\n" in value or value.startswith("forbidden") else f"forbidden_imports = {value}"
    with pytest.raises(CourseError) as info:
        load(tmp_path, line)
    assert str(tmp_path / "assignment.toml") in str(info.value)
    assert message in str(info.value)
