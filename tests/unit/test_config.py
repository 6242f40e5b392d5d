"""assignment.toml: limits are checked when loaded, with the value and the fix named."""

from __future__ import annotations

from pathlib import Path

import pytest

from autograder.config import (
    DEFAULT_CATEGORIES,
    AssignmentConfig,
    Layout,
    Limits,
    assignment_names,
    resolve_name,
)
from autograder.errors import ConfigError

HEAD = '[assignment]\nid = "c1"\ntitle = "c"\nmodules = ["m"]\n\n'


def load(tmp_path: Path, limits: str) -> AssignmentConfig:
    path = tmp_path / "assignment.toml"
    path.write_text(HEAD + "[limits]\n" + limits)
    return AssignmentConfig.load(path)


def test_limits_are_read(tmp_path: Path) -> None:
    cfg = load(tmp_path, "call_timeout = 2.5\nmessage_mb = 8\n")
    assert cfg.limits.call_timeout == 2.5 and cfg.limits.message_mb == 8
    assert cfg.limits.memory_mb == Limits().memory_mb


@pytest.mark.parametrize(("line", "message"), [
    ("message_mb = 0", "message_mb = 0: use a positive whole number, e.g. message_mb = 64"),
    ("threads = 1.5", "threads = 1.5: use a positive whole number"),
    ("call_timeout = 'ten'", "call_timeout = 'ten': use a positive number, e.g. call_timeout = 10"),
    ("memory_mb = true", "memory_mb = True: use a positive whole number"),
    ("test_timeout = -1", "test_timeout = -1: use a positive number"),
    ("mesage_mb = 8", "unexpected keyword argument 'mesage_mb'; known limits: call_timeout"),
])
def test_bad_limits_name_the_file_value_and_fix(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, line + "\n")
    assert str(tmp_path / "assignment.toml") in str(info.value)
    assert message in str(info.value)


@pytest.mark.parametrize(("modules", "message"), [
    ('["layers.py"]', "modules entry 'layers.py' is not a module name (write \"layers\", without \".py\")"),
    ("[]", "modules = []; give a non-empty list"),
    ('"layers"', "modules = 'layers'; give a non-empty list"),
    ('["ok", 3]', "modules entry 3 is not a module name"),
])
def test_bad_modules_name_the_entry(tmp_path: Path, modules: str, message: str) -> None:
    path = tmp_path / "assignment.toml"
    path.write_text(f'[assignment]\nid = "c1"\ntitle = "c"\nmodules = {modules}\n')
    with pytest.raises(ConfigError) as info:
        AssignmentConfig.load(path)
    assert message in str(info.value)


def test_id_must_match_the_folder(tmp_path: Path) -> None:
    ref = tmp_path / "reference_tests" / "a1_numpy"
    ref.mkdir(parents=True)
    (ref / "assignment.toml").write_text(HEAD.replace('"c1"', '"a2"'))
    with pytest.raises(ConfigError, match=r"id = 'a2' does not match the folder 'a1_numpy'"):
        Layout(tmp_path, "a1_numpy").config()
    (ref / "assignment.toml").write_text(HEAD.replace('"c1"', '"a1"'))
    assert Layout(tmp_path, "a1_numpy").config().id == "a1"


def test_unknown_assignment_lists_names_and_ids(tmp_path: Path) -> None:
    for name in ("a1_numpy", "a2_torch"):
        (tmp_path / "reference_tests" / name).mkdir(parents=True)
        (tmp_path / "reference_tests" / name / "assignment.toml").write_text(HEAD)
    with pytest.raises(ConfigError, match=r"known assignments: a1_numpy, a2_torch \(by id: a1, a2\)"):
        resolve_name(tmp_path, "a7")


# ---------------------------------------------------------------- discovery


def _course(root: Path, **folders: list[str]) -> None:
    """root/<where>/<name>/ for each name; an assignment.toml in reference_tests/ and
    assignments/ folders (not in solutions/)."""
    for where, names in folders.items():
        for name in names:
            (root / where / name).mkdir(parents=True)
            if where != "solutions":
                (root / where / name / "assignment.toml").write_text(HEAD)


def test_assignment_names_by_use(tmp_path: Path) -> None:
    assert assignment_names(tmp_path) == assignment_names(tmp_path, where="graded") == []
    assert assignment_names(tmp_path, where="solutions") == []
    _course(tmp_path, assignments=["a1_numpy_nn", "a3_gan"])
    # A copy of the course without hidden tests: `grade`/`check` use its assignments/.
    assert assignment_names(tmp_path, where="graded") == ["a1_numpy_nn", "a3_gan"]
    assert assignment_names(tmp_path) == []
    _course(tmp_path, reference_tests=["a2_torch", "a1_numpy_nn"],
            solutions=["a1_numpy_nn", "a2_torch", "a4_solo", ".hidden", "__pycache__"])
    (tmp_path / "reference_tests" / "notes").mkdir()  # no assignment.toml: not one
    (tmp_path / "reference_tests" / ".hidden").mkdir()
    (tmp_path / "reference_tests" / "__pycache__").mkdir()
    (tmp_path / "solutions" / "notes.md").write_text("")
    assert assignment_names(tmp_path) == ["a1_numpy_nn", "a2_torch"]
    assert assignment_names(tmp_path, where="graded") == ["a1_numpy_nn", "a2_torch"]
    # `template` generates from solutions/ that have a reference_tests/ twin.
    assert assignment_names(tmp_path, where="solutions") == ["a1_numpy_nn", "a2_torch"]


def test_resolve_name_falls_back_to_the_templates(tmp_path: Path) -> None:
    _course(tmp_path, assignments=["a1_numpy_nn"])
    assert resolve_name(tmp_path, "a1") == "a1_numpy_nn"
    _course(tmp_path, reference_tests=["a2_torch"])
    with pytest.raises(ConfigError, match=r"unknown assignment 'a1'; known assignments: a2_torch"):
        resolve_name(tmp_path, "a1")


# ---------------------------------------------------------------- [report], [environment]


def load_text(tmp_path: Path, text: str) -> AssignmentConfig:
    """HEAD and ``text``; top-level keys of ``text`` (before its first table) go first."""
    path = tmp_path / "assignment.toml"
    path.write_text(HEAD + text if text.startswith("[") or not text else text + HEAD)
    return AssignmentConfig.load(path)


def test_categories_default_to_the_five_kinds(tmp_path: Path) -> None:
    assert load_text(tmp_path, "").categories == DEFAULT_CATEGORIES
    assert "gradients" in DEFAULT_CATEGORIES and "performance" in DEFAULT_CATEGORIES


def test_categories_are_read(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, '[report]\ncategories = ["data", "experiments", "data"]\n')
    assert cfg.categories == ("data", "experiments")


@pytest.mark.parametrize(("text", "message"), [
    ("[report]\ncategories = []\n", "[report] categories = []; give a non-empty list of tag names"),
    ('[report]\ncategories = "data"\n', "[report] categories = 'data'; give a non-empty list"),
    ('[report]\ncategories = ["data", ""]\n', "[report] categories entry '' is not a tag name"),
    ('[report]\ncategories = ["data", 3]\n', "[report] categories entry 3 is not a tag name"),
    ('[report]\ncategory = ["data"]\n', "unknown [report] entry 'category'; known: categories"),
    ('report = "data"\n', "report = 'data'; [report] is a table"),
])
def test_bad_categories_name_the_value_and_fix(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, text)
    assert str(tmp_path / "assignment.toml") in str(info.value)
    assert message in str(info.value)
    if "entry" in message and "unknown" not in message:
        assert 'e.g. categories = ["gradients", "shapes"]' in str(info.value)


def test_environment_is_read_and_empty_by_default(tmp_path: Path) -> None:
    assert load_text(tmp_path, "").environment == {}
    cfg = load_text(tmp_path, '[environment]\nWANDB_MODE = "offline"\nDVC_NO_ANALYTICS = "1"\n')
    assert cfg.environment == {"WANDB_MODE": "offline", "DVC_NO_ANALYTICS": "1"}


@pytest.mark.parametrize(("line", "message"), [
    ("DVC_NO_ANALYTICS = 1", 'DVC_NO_ANALYTICS = 1; give a string without NUL characters, '
                             'e.g. DVC_NO_ANALYTICS = "1"'),
    ("FLAG = true", 'FLAG = True; give a string without NUL characters, e.g. FLAG = "true"'),
    ('LIST = ["a"]', "LIST = ['a']; give a string"),
    ('NUL = "a\\u0000b"', "NUL = 'a\\x00b'; give a string without NUL characters"),
    ('"WANDB-MODE" = "offline"', "[environment] 'WANDB-MODE' is not a variable name"),
    ('"1ST" = "x"', "[environment] '1ST' is not a variable name"),
    ('PATH = "/opt/bin"', "[environment] PATH is set by the harness for every worker"),
    ('HOME = "/root"', "[environment] HOME is set by the harness"),
    ('PYTHONPATH = "/opt"', "[environment] PYTHONPATH is set by the harness"),
    ('OMP_NUM_THREADS = "8"', "[environment] OMP_NUM_THREADS is set by the harness"),
    ('OPENBLAS_CORETYPE = "x"', "[environment] OPENBLAS_CORETYPE is set by the harness"),
])
def test_bad_environment_names_the_key_and_fix(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, f"[environment]\n{line}\n")
    assert str(tmp_path / "assignment.toml") in str(info.value)
    assert message in str(info.value)
    if "set by the harness" in message:
        assert "remove it" in str(info.value)


def test_environment_must_be_a_table(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"environment = 'WANDB_MODE=offline'; \[environment\] "
                                          r"is a table"):
        load_text(tmp_path, 'environment = "WANDB_MODE=offline"\n')


def test_limits_in_bytes() -> None:
    lim = Limits(message_mb=3, output_mb=2)
    assert (lim.message_bytes, lim.output_bytes) == (3 * 2**20, 2 * 2**20)
