"""The image installs wheels only: a dependency published as a source archive alone
(antlr4-python3-runtime, pulled in by dvc) is built into a wheel in the wheelhouse."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from autograder.errors import ConfigError
from autograder.packaging.images import _wheels_only


def _sdist(folder: Path, pyproject: str) -> Path:
    src = folder / "src" / "tinydep-0.1"
    src.mkdir(parents=True)
    (src / "pyproject.toml").write_text(pyproject)
    (src / "tinydep.py").write_text("VALUE = 1\n")
    archive = folder / "house" / "tinydep-0.1.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(src, arcname="tinydep-0.1")
    return archive


def test_source_archive_becomes_a_wheel(tmp_path: Path) -> None:
    archive = _sdist(tmp_path, '[build-system]\nrequires = ["setuptools>=61"]\n'
                               'build-backend = "setuptools.build_meta"\n\n'
                               '[project]\nname = "tinydep"\nversion = "0.1"\n\n'
                               '[tool.setuptools]\npy-modules = ["tinydep"]\n')
    _wheels_only(archive.parent, log=lambda _: None)
    assert not archive.exists()
    assert [p.name for p in archive.parent.glob("*.whl")] == ["tinydep-0.1-py3-none-any.whl"]


def test_an_archive_that_does_not_build_is_a_clear_error(tmp_path: Path) -> None:
    archive = _sdist(tmp_path, "this is not toml [")
    with pytest.raises(ConfigError, match="no wheel could be built from .*tinydep-0.1.tar.gz"):
        _wheels_only(archive.parent, log=lambda _: None)
