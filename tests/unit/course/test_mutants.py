"""mutants.toml loading and validation; applying a mutant to a copy of the solution."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from autograder.course.mutants import Mutant, apply_mutant, load_mutants, load_variants
from autograder.errors import ConfigError

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures/authoring/course/solutions/a9_tiny"

GOOD = """\
[[mutant]]
name = "relu_leaks"
description = "ReLU lets negatives through"
file = "ops.py"
find = "np.maximum(x, 0)"
replace = "np.maximum(x, -1)"
"""


@pytest.fixture
def solution(tmp_path: Path) -> Path:
    root = tmp_path / "a1_tiny"
    (root / "pkg").mkdir(parents=True)
    (root / "ops.py").write_text(
        "import numpy as np\n\n\ndef relu(x):\n    return np.maximum(x, 0)\n"
    )
    (root / "pkg" / "helpers.py").write_text("A = 1\nB = 1\n")
    (root / "README.md").write_text("# Task\n")
    (root / "mutants.toml").write_text(GOOD)
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "ops.cpython-311.pyc").write_bytes(b"\0")
    (root / "pkg" / "helpers.cpython-311.pyc").write_bytes(b"\0")
    return root


def test_load_fixture_mutants() -> None:
    mutants = load_mutants(FIXTURE)
    assert [m.name for m in mutants] == ["relu_leaks_negative", "mean-off-by-one"]
    assert mutants[1] == Mutant(
        name="mean-off-by-one",
        description="mean divides by n - 1",
        file="stats.py",
        find="x.size)",
        replace="(x.size - 1))",
    )


def test_apply_mutant_copies_and_substitutes(solution: Path, tmp_path: Path) -> None:
    [mutant] = load_mutants(solution)
    dest = apply_mutant(solution, mutant, tmp_path / "out" / "relu_leaks")
    assert dest == tmp_path / "out" / "relu_leaks"
    copied = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert copied == ["README.md", "ops.py", "pkg/helpers.py"]
    assert (dest / "ops.py").read_text().endswith("return np.maximum(x, -1)\n")
    assert (dest / "pkg" / "helpers.py").read_text() == "A = 1\nB = 1\n"
    assert "np.maximum(x, 0)" in (solution / "ops.py").read_text()  # original untouched


def test_apply_mutant_into_existing_empty_folder_and_nested_file(
    solution: Path, tmp_path: Path
) -> None:
    mutant = Mutant("b_is_two", "B set wrong", "pkg/helpers.py", "B = 1", "B = 2")
    dest = tmp_path / "empty"
    dest.mkdir()
    apply_mutant(solution, mutant, dest)
    assert (dest / "pkg" / "helpers.py").read_text() == "A = 1\nB = 2\n"


def test_apply_mutant_keeps_crlf_bytes(solution: Path, tmp_path: Path) -> None:
    (solution / "ops.py").write_bytes(b"def relu(x):\r\n    return np.maximum(x, 0)\r\n")
    [mutant] = load_mutants(solution)
    dest = apply_mutant(solution, mutant, tmp_path / "out")
    assert (dest / "ops.py").read_bytes() == b"def relu(x):\r\n    return np.maximum(x, -1)\r\n"


def test_apply_mutant_refuses_a_non_empty_destination(solution: Path, tmp_path: Path) -> None:
    [mutant] = load_mutants(solution)
    dest = tmp_path / "busy"
    dest.mkdir()
    (dest / "left_over.py").write_text("")
    with pytest.raises(ConfigError, match=r"busy is not empty; apply mutant 'relu_leaks'"):
        apply_mutant(solution, mutant, dest)


def test_apply_mutant_rechecks_the_solution(solution: Path, tmp_path: Path) -> None:
    [mutant] = load_mutants(solution)
    (solution / "ops.py").write_text("def relu(x):\n    return x\n")
    with pytest.raises(ConfigError, match=r"'relu_leaks': find text .* does not occur in ops\.py"):
        apply_mutant(solution, mutant, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def _entry(**changes: object) -> str:
    fields: dict[str, object] = {
        "name": "relu_leaks",
        "description": "ReLU lets negatives through",
        "file": "ops.py",
        "find": "np.maximum(x, 0)",
        "replace": "np.maximum(x, -1)",
    }
    fields.update(changes)
    lines = ["[[mutant]]"]
    for key, value in fields.items():
        if value is not None:
            lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[[mutant\n", "mutants.toml cannot be read"),
        ("[[mutants]]\nname = 'x'\n", "unknown top-level keys ['mutants']"),
        ("title = 'x'\n", "unknown top-level keys ['title']"),
        ("", "defines no [[mutant]] tables"),
        ("mutant = [1]\n", "[[mutant]] #1 is not a table"),
        (_entry(severity="high"), "unknown keys ['severity']"),
        (_entry(replace=None), "replace = None; it must be a string"),
        (_entry(find=3), "find = 3; it must be a string"),
        (_entry(name="Relu Leaks"), "name 'Relu Leaks' is not a slug"),
        (_entry(name="relu__leaks"), "is not a slug"),
        (_entry(name=""), "name '' is not a slug"),
        (_entry(description="  "), "('relu_leaks'): description is empty"),
        (_entry(file="/abs/ops.py"), "file = '/abs/ops.py'; give a path inside"),
        (_entry(file="../ops.py"), "file = '../ops.py'"),
        (_entry(file="pkg\\helpers.py"), "with '/' separators"),
        (_entry(file="mutants.toml"), "is not part of the solution copy"),
        (_entry(file="__pycache__/x.py"), "is not part of the solution copy"),
        (_entry(file="missing.py"), "file 'missing.py' does not exist"),
        (_entry(find=""), "find is empty"),
        (_entry(replace="np.maximum(x, 0)"), "replace equals find"),
        (_entry(find="np.minimum"), "find text 'np.minimum' does not occur in ops.py"),
        (_entry(find="x"), "occurs 3 times in ops.py; it must occur exactly once"),
        (_entry() + _entry(), "mutant name 'relu_leaks' is used twice"),
    ],
)
def test_load_mutants_errors(solution: Path, toml: str, message: str) -> None:
    (solution / "mutants.toml").write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_mutants(solution)
    assert message in str(info.value)


def test_missing_mutants_file(tmp_path: Path) -> None:
    shutil.copytree(FIXTURE, tmp_path / "a9", ignore=shutil.ignore_patterns("mutants.toml"))
    with pytest.raises(ConfigError, match=r"mutants\.toml is missing; every assignment ships"):
        load_mutants(tmp_path / "a9")


def test_non_utf8_target(solution: Path) -> None:
    (solution / "ops.py").write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match=r"'relu_leaks': ops\.py is not UTF-8 text"):
        load_mutants(solution)


# ---------------------------------------------------------------- variants.toml


def test_variants_file_is_optional(solution: Path) -> None:
    assert load_variants(solution) == []


def test_variants_load_apply_and_stay_out_of_copies(solution: Path, tmp_path: Path) -> None:
    (solution / "variants.toml").write_text(
        _entry(name="relu_where", description="np.where instead of np.maximum",
               replace="np.where(x > 0, x, 0)").replace("[[mutant]]", "[[variant]]"))
    [variant] = load_variants(solution)
    assert variant.kind == "variant" and variant.name == "relu_where"
    dest = apply_mutant(solution, variant, tmp_path / "v")
    assert (dest / "ops.py").read_text().endswith("return np.where(x > 0, x, 0)\n")
    # neither edit list reaches a graded copy (a submission would carry the answers' edits)
    assert not (dest / "variants.toml").exists() and not (dest / "mutants.toml").exists()


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (_entry(), "unknown top-level keys ['mutant']; write each as [[variant]]"),
        ("", "variants.toml defines no [[variant]] tables"),
        (_entry(find="np.minimum").replace("[[mutant]]", "[[variant]]"),
         "variant 'relu_leaks': find text 'np.minimum' does not occur"),
        (_entry(description=" ").replace("[[mutant]]", "[[variant]]"),
         "description is empty; say which correct way it shows"),
        (_entry(file="variants.toml").replace("[[mutant]]", "[[variant]]"),
         "is not part of the solution copy"),
    ],
)
def test_load_variants_errors(solution: Path, toml: str, message: str) -> None:
    (solution / "variants.toml").write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_variants(solution)
    assert message in str(info.value)


def test_apply_refuses_a_non_empty_destination_naming_the_variant(solution: Path,
                                                                  tmp_path: Path) -> None:
    (solution / "variants.toml").write_text(_entry().replace("[[mutant]]", "[[variant]]"))
    [variant] = load_variants(solution)
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "stale.py").write_text("")
    with pytest.raises(ConfigError, match="apply variant 'relu_leaks' to a new folder"):
        apply_mutant(solution, variant, tmp_path / "v")


def _folder_variant(solution: Path, files: dict[str, str], **changes: str) -> None:
    fields = {"name": "relu_where", "description": "a whole other ops.py",
              "folder": "variants/relu_where", **changes}
    (solution / "variants.toml").write_text(
        "[[variant]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in fields.items()))
    for rel, text in files.items():
        (solution / "variants" / "relu_where" / rel).parent.mkdir(parents=True, exist_ok=True)
        (solution / "variants" / "relu_where" / rel).write_text(text)


def test_a_folder_variant_replaces_whole_files(solution: Path, tmp_path: Path) -> None:
    other = "import numpy as np\n\n\ndef relu(x):\n    return np.where(x > 0, x, 0)\n"
    _folder_variant(solution, {"ops.py": other})
    [variant] = load_variants(solution)
    assert variant.folder == "variants/relu_where" and variant.kind == "variant"
    dest = apply_mutant(solution, variant, tmp_path / "v")
    assert (dest / "ops.py").read_text() == other
    assert (dest / "pkg" / "helpers.py").read_text() == "A = 1\nB = 1\n"  # the rest as is
    assert not (dest / "variants").exists()  # never part of a graded copy


@pytest.mark.parametrize(
    ("files", "changes", "message"),
    [
        ({"ops.py": "x = 1\n"}, {"folder": "elsewhere/relu_where"}, "give a folder below variants/"),
        ({"ops.py": "x = 1\n"}, {"folder": "variants/../ops"}, "give a folder below variants/"),
        ({"ops.py": "x = 1\n"}, {"folder": "variants/missing"}, "does not exist"),
        ({}, {}, "does not exist"),
        ({"extra.py": "x = 1\n"}, {}, "['extra.py'] in 'variants/relu_where' replace no file"),
        ({"ops.py": "x = 1\n"}, {"find": "x"}, "unknown keys ['find']; a folder variant has"),
    ],
)
def test_folder_variant_errors(solution: Path, files: dict[str, str], changes: dict[str, str],
                               message: str) -> None:
    _folder_variant(solution, files, **changes)
    with pytest.raises(ConfigError) as info:
        load_variants(solution)
    assert message in str(info.value)
