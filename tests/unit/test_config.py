"""assignment.toml: limits are checked when loaded, with the value and the fix named."""

from __future__ import annotations

from pathlib import Path

import pytest

from autograder.config import AssignmentConfig, Limits
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
