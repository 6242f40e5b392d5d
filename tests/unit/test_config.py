"""assignment.toml: limits are checked when loaded, with the value and the fix named."""

from __future__ import annotations

from pathlib import Path

import pytest

from autograder.config import AssignmentConfig, Layout, Limits, resolve_name
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
