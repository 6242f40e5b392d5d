"""Hostile submissions against the grader's preparation step: huge files, deep folders,
thousands of long names, giant notebook lines. The grader stays small and says what
it left out; the assignment's modules at the top level are still graded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from autograder.config import AssignmentConfig
from autograder.grading import submission
from autograder.grading.submission import prepare_submission

CONFIG = AssignmentConfig(id="s1", title="s", modules=("ops",), support=("data.py",))
OPS = "def relu(x):\n    return x * (x > 0)\n"
OFFICIAL = "def load():\n    return [1, 2, 3]\n"


def _submission(tmp_path: Path) -> tuple[Path, Path]:
    """(submission with ops.py, support folder with the official data.py)."""
    sub, support = tmp_path / "sub", tmp_path / "support"
    sub.mkdir()
    support.mkdir()
    (sub / "ops.py").write_text(OPS)
    (support / "data.py").write_text(OFFICIAL)
    return sub, support


# ------------------------------------------------------------ huge files (2a)

PREPARE_UNDER_1_GB = """
import json, resource, sys
from pathlib import Path
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from autograder.config import AssignmentConfig
from autograder.grading.submission import prepare_submission
config = AssignmentConfig(id="s1", title="s", modules=("ops",), support=("data.py",))
sub, support, out = map(Path, sys.argv[1:4])
prepared = prepare_submission(sub, config, support, out)
print(json.dumps({"found": prepared.found, "ignored": prepared.ignored}))
"""


def test_a_2_gb_support_file_is_never_read_into_the_grader(tmp_path: Path) -> None:
    """A sparse 2 GB data.py beside the modules: the grader (here under a 1 GB address
    space limit) compares it with the official copy without reading it whole."""
    sub, support = _submission(tmp_path)
    with (sub / "data.py").open("wb") as f:
        f.truncate(2 * 1024**3)
    proc = subprocess.run([sys.executable, "-c", PREPARE_UNDER_1_GB, str(sub), str(support),
                           str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["found"] == {"ops": "ops.py"}
    assert result["ignored"] == ["data.py (the official copy is used)"]
    assert (tmp_path / "out" / "data.py").read_text() == OFFICIAL


@pytest.mark.parametrize(("submitted", "official", "listed"), [
    (OFFICIAL, OFFICIAL, False),  # the official file as shipped: nothing to say
    (OFFICIAL.replace("3", "4"), OFFICIAL, True),  # same size, other bytes
    (OFFICIAL * 20_000, OFFICIAL * 20_000, False),  # larger than a chunk of the comparison
    (OFFICIAL * 20_000 + "#", OFFICIAL * 20_000 + "!", True),
])
def test_support_files_are_compared_with_the_official_copy(tmp_path: Path, submitted: str,
                                                           official: str, listed: bool) -> None:
    sub, support = _submission(tmp_path)
    (sub / "data.py").write_text(submitted)
    (support / "data.py").write_text(official)
    prepared = prepare_submission(sub, CONFIG, support, tmp_path / "out")
    assert prepared.ignored == (["data.py (the official copy is used)"] if listed else [])


# ------------------------------------------------------------ deep folders (2b)

@pytest.fixture
def deep(tmp_path: Path) -> Iterator[Path]:
    """A submission with ops.py and 1100 nested folders d/d/d/..., made and removed
    without recursion (shutil.rmtree would recurse past Python's limit)."""
    sub, _ = _submission(tmp_path)
    fds = [os.open(sub, os.O_RDONLY)]
    try:
        for _ in range(1100):
            os.mkdir("d", dir_fd=fds[-1])
            fds.append(os.open("d", os.O_RDONLY, dir_fd=fds[-1]))
        (Path(f"/proc/self/fd/{fds[-1]}") / "ops.py").write_text(OPS)
        yield sub
    finally:
        for parent in reversed(fds[:-1]):
            try:
                os.rmdir("d", dir_fd=parent)
            except FileNotFoundError:
                pass
            except OSError:
                leaf = fds[fds.index(parent) + 1]
                for name in os.listdir(leaf):
                    os.unlink(name, dir_fd=leaf)
                os.rmdir("d", dir_fd=parent)
        for fd in fds:
            os.close(fd)


def test_a_thousand_nested_folders_are_the_students_problem_not_the_graders(
        deep: Path, tmp_path: Path) -> None:
    prepared = prepare_submission(deep, CONFIG, None, tmp_path / "out")
    assert prepared.found == {"ops": "ops.py"} and prepared.problems == {}
    limit = submission.MAX_DEPTH
    too_deep = [s for s in prepared.ignored if "nested deeper" in s]
    assert too_deep == ["d/" * (limit + 1) + f" (not looked into: folders nested deeper "
                        f"than {limit} levels, the limit)"]
    assert f"folders nested deeper than {limit} levels" in prepared.report()


def test_a_folder_with_too_many_entries_is_listed_with_the_limit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("autograder.grading.submission.MAX_WALKED", 50)
    sub, _ = _submission(tmp_path)
    for i in range(60):
        (sub / f"junk{i:03}.txt").write_text("")
    prepared = prepare_submission(sub, CONFIG, None, tmp_path / "out")
    assert prepared.found == {"ops": "ops.py"}
    assert "more than 50 files and folders, the limit" in prepared.ignored[0]


# ------------------------------------------------------------ huge lists (2c)

def test_thousands_of_long_file_names_keep_the_lists_small(tmp_path: Path) -> None:
    sub, _ = _submission(tmp_path)
    for i in range(2000):
        (sub / (f"{i:05}_" + "x" * 240)).write_text("")
    prepared = prepare_submission(sub, CONFIG, None, tmp_path / "out")
    assert len(prepared.ignored) == 101 and prepared.ignored[-1] == "... and 1900 more"
    assert all(len(s) <= 200 for s in prepared.ignored)
    assert prepared.ignored[0].startswith("00000_xxx") and prepared.ignored[0].endswith(
        "xxx (not part of the assignment)")
    assert len(json.dumps(prepared.ignored)) < 25_000
    report = prepared.report()
    assert "  ... and 1950 more" in report and len(report) < 15_000


def _notebook(path: Path, *cells: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, str(path))


def test_a_giant_notebook_magic_line_is_listed_short(tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    magic = "%time " + "x" * 3_900_000
    _notebook(sub / "ops.ipynb", magic, OPS)
    prepared = prepare_submission(sub, CONFIG, None, tmp_path / "out")
    assert prepared.found == {"ops": "ops.ipynb"}
    [line] = prepared.stripped
    assert len(line) <= 200
    assert line.startswith("ops.ipynb cell 1 line 1: %time xxx")
    assert len(prepared.report()) < 1_000


def test_many_stripped_notebook_lines_are_capped(tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    magics = "".join(f"!echo {i}\n" for i in range(300))
    _notebook(sub / "ops.ipynb", magics, OPS)
    prepared = prepare_submission(sub, CONFIG, None, tmp_path / "out")
    assert len(prepared.stripped) == 101 and prepared.stripped[-1] == "... and 200 more"
    assert "  ... and 250 more" in prepared.report()
