"""[assignment] files: project files (dvc.yaml, params.yaml, .dvc/config...) that a
submission provides beside its modules reach the worker's folder; the template carries
them with their solution blocks replaced by TODO comments."""

from __future__ import annotations

import os
import shutil
import tomllib
from pathlib import Path

import pytest

from autograder.config import AssignmentConfig, is_project_file, project_files
from autograder.course.templates import generate_template, strip_text_solutions
from autograder.errors import CourseError
from autograder.grading.submission import MAX_FILE_BYTES, prepare_submission

CONFIG = AssignmentConfig(id="s1", title="s", modules=("ops",),
                          files=("dvc.yaml", "params.yaml", ".dvc/config", "conf/*.toml"))
COURSE = Path(__file__).resolve().parents[2] / "fixtures" / "authoring" / "course"
NAME = "a9_tiny"


def _submission(root: Path) -> Path:
    (root / ".dvc").mkdir(parents=True)
    (root / "conf" / "deep").mkdir(parents=True)
    (root / "ops.py").write_text("def relu(x):\n    return x\n")
    (root / "dvc.yaml").write_text("stages: {}\n")
    (root / ".dvc" / "config").write_text("[core]\n    no_scm = True\n")
    (root / "conf" / "a.toml").write_text("x = 1\n")
    (root / "conf" / "deep" / "b.toml").write_text("x = 2\n")  # * stays in one folder
    (root / "notes.txt").write_text("mine\n")
    return root


def test_project_files_are_copied_with_their_folders(tmp_path: Path) -> None:
    sub = prepare_submission(_submission(tmp_path / "sub"), CONFIG, None, tmp_path / "out")
    out = tmp_path / "out"
    assert (out / "dvc.yaml").read_text() == "stages: {}\n"
    assert (out / ".dvc" / "config").is_file() and (out / "conf" / "a.toml").is_file()
    assert not (out / "conf" / "deep").exists() and not (out / "notes.txt").exists()
    assert sub.project_files == [".dvc/config", "conf/a.toml", "dvc.yaml"]
    assert sub.missing_files == ["params.yaml"]
    report = sub.report()
    assert "Project files: .dvc/config, conf/a.toml, dvc.yaml" in report
    assert "Project files missing from your submission: params.yaml" in report
    assert any(i.startswith("notes.txt (not part") for i in sub.ignored)
    assert not any(i.startswith(("dvc.yaml", ".dvc/config")) for i in sub.ignored)


def test_project_files_in_the_one_folder_graded(tmp_path: Path) -> None:
    _submission(tmp_path / "sub" / "a6_dvc")
    sub = prepare_submission(tmp_path / "sub", CONFIG, None, tmp_path / "out")
    assert sub.base == "a6_dvc" and (tmp_path / "out" / "dvc.yaml").is_file()
    assert sub.project_files[-1] == "a6_dvc/dvc.yaml"


def test_symlinks_and_huge_files_are_refused_with_the_reason(tmp_path: Path) -> None:
    root = _submission(tmp_path / "sub")
    (root / "dvc.yaml").unlink()
    os.symlink("/etc/passwd", root / "dvc.yaml")
    with (root / "params.yaml").open("wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)
    sub = prepare_submission(root, CONFIG, None, tmp_path / "out")
    assert not (tmp_path / "out" / "dvc.yaml").exists()
    assert not (tmp_path / "out" / "params.yaml").exists()
    assert any(i.startswith("dvc.yaml (not a regular file") for i in sub.ignored)
    assert any(i.startswith("params.yaml (larger than") for i in sub.ignored)
    assert sub.missing_files == []  # present, refused: said once, with the reason


@pytest.mark.parametrize(("value", "fix"), [
    ("dvc.yaml", "give a list"), (["../x"], "not a relative path"), (["/etc/x"], "relative"),
    (["a\\b"], "forward slashes"), (["ops.py"], "also a module"), ([""], "relative"),
])
def test_bad_files_entries_name_the_value_and_the_fix(value: object, fix: str) -> None:
    with pytest.raises(CourseError, match=fix):
        project_files(value, "assignment.toml", ("ops",), ())


def test_patterns_match_part_by_part() -> None:
    assert is_project_file("plots/a.csv", ("plots/*.csv",))
    assert not is_project_file("plots/x/a.csv", ("plots/*.csv",))
    assert not is_project_file("dvc.yaml.bak", ("dvc.yaml",))


def test_loaded_from_assignment_toml(tmp_path: Path) -> None:
    path = tmp_path / "assignment.toml"
    path.write_text('[assignment]\nid = "s1"\ntitle = "s"\nmodules = ["ops"]\n'
                    'files = ["dvc.yaml", "./params.yaml", "dvc.yaml"]\n')
    assert AssignmentConfig.load(path).files == ("dvc.yaml", "params.yaml")


def test_text_solutions_become_todo_comments() -> None:
    text = ("stages:\n  train:\n    # BEGIN SOLUTION hint: cmd, deps, params, outs\n"
            "    cmd: python train.py\n    # END SOLUTION\n")
    assert strip_text_solutions(text, filename="dvc.yaml") == (
        "stages:\n  train:\n    # TODO: cmd, deps, params, outs\n")
    with pytest.raises(CourseError, match="never closed"):
        strip_text_solutions("# BEGIN SOLUTION\nx: 1\n", filename="dvc.yaml")


def test_template_carries_project_files(tmp_path: Path) -> None:
    course = tmp_path / "course"
    shutil.copytree(COURSE, course)
    config = course / "reference_tests" / NAME / "assignment.toml"
    config.write_text(config.read_text().replace(
        'support = ["data.py"]', 'support = ["data.py"]\nfiles = ["conf/*.yaml"]'))
    (course / "solutions" / NAME / "conf").mkdir()
    (course / "solutions" / NAME / "conf" / "run.yaml").write_text(
        "lr: 0.1\n# BEGIN SOLUTION\nepochs: 3\n# END SOLUTION\n")
    files = generate_template(course, NAME)
    assert files[Path("conf/run.yaml")] == b"lr: 0.1\n# TODO\n"
    public = tomllib.loads(files[Path("assignment.toml")].decode())
    assert public["assignment"]["files"] == ["conf/*.yaml"]
    (course / "solutions" / NAME / "conf" / "run.yaml").unlink()
    with pytest.raises(CourseError, match="conf/\\*.yaml is missing"):
        generate_template(course, NAME)
