"""grade-all's inputs: which paths are submissions (folders, zips), how a zip is unpacked
(safely, within bounds), and the options it refuses."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest

from autograder.course import bulk
from autograder.course.bulk import parse_targets
from autograder.errors import ConfigError, SubmissionError
from autograder.grading.submission import extract_zip

MODULES = ("ops", "stats")


def _zip(path: Path, members: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return path


# ------------------------------------------------------------ which paths are submissions

def test_a_zip_beside_submission_folders_is_a_submission_named_after_it(tmp_path: Path) -> None:
    subs = tmp_path / "SUBS"
    (subs / "alice").mkdir(parents=True)
    (subs / "alice" / "ops.py").write_text("")
    _zip(subs / "carol.zip", {"ops.py": ""})
    (subs / "metadata.yml").write_text("")
    t = parse_targets([str(subs)], MODULES)
    assert t.submissions == [("alice", subs / "alice"), ("carol", subs / "carol.zip")]
    assert t.ignored == [subs / "metadata.yml"] and t.collisions == {}


def test_a_folder_of_zips_only_is_a_folder_of_submissions(tmp_path: Path) -> None:
    subs = tmp_path / "SUBS"
    _zip(subs / "alice.zip", {"ops.py": ""})
    _zip(subs / "bob.ZIP", {"a1/ops.py": ""})
    t = parse_targets([str(subs)], MODULES)
    assert t.submissions == [("alice", subs / "alice.zip"), ("bob", subs / "bob.ZIP")]
    assert t.ignored == []


def test_a_zip_given_directly_is_one_submission(tmp_path: Path) -> None:
    z = _zip(tmp_path / "dave.zip", {"ops.py": ""})
    assert parse_targets([str(z), f"erin={z}"], MODULES).submissions == [("dave", z), ("erin", z)]


def test_a_folder_and_a_zip_of_the_same_name_collide_alone(tmp_path: Path) -> None:
    """Only the colliding pair is left out (each a row of the report), not the batch."""
    subs = tmp_path / "SUBS"
    (subs / "alice").mkdir(parents=True)
    (subs / "bob").mkdir(parents=True)
    _zip(subs / "alice.zip", {"ops.py": ""})
    t = parse_targets([str(subs)], MODULES)
    assert t.submissions == [("bob", subs / "bob")]
    assert t.collisions == {"alice": [subs / "alice", subs / "alice.zip"]}


# ------------------------------------------------------------ unpacking a zip

def test_a_zip_unpacks_its_files_and_folders_but_not_macos_metadata(tmp_path: Path) -> None:
    z = _zip(tmp_path / "carol.zip", {"a1/ops.py": "x = 1\n", "a1\\stats.py": "y = 2\n",
                                      "__MACOSX/a1/._ops.py": "junk", "./notes.txt": "n"})
    dest = tmp_path / "out"
    dest.mkdir()
    extract_zip(z, dest)
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert files == ["a1/ops.py", "a1/stats.py", "notes.txt"]
    assert (dest / "a1" / "ops.py").read_text() == "x = 1\n"


@pytest.mark.parametrize(("member", "says"), [
    ("/etc/evil.py", "absolute path ('/etc/evil.py')"),
    ("C:/evil.py", "absolute path ('C:/evil.py')"),
    ("a1/../../evil.py", "leaves the folder ('a1/../../evil.py', with '..')"),
    ("..\\evil.py", "leaves the folder"),
])
def test_a_member_outside_the_folder_is_refused(tmp_path: Path, member: str, says: str) -> None:
    z = _zip(tmp_path / "sub" / "carol.zip", {"ops.py": "", member: "boom"})
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(SubmissionError) as info:
        extract_zip(z, dest)
    assert str(info.value).startswith("carol.zip holds a file ")
    assert says in str(info.value)
    assert not (tmp_path / "evil.py").exists() and not (tmp_path / "sub" / "evil.py").exists()


def test_a_symlink_in_a_zip_is_refused(tmp_path: Path) -> None:
    z = tmp_path / "carol.zip"
    link = zipfile.ZipInfo("ops.py")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(link, "/etc/passwd")
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(SubmissionError, match=r"carol.zip holds a symbolic link \('ops.py'\)"):
        extract_zip(z, dest)
    assert not (dest / "ops.py").exists()


def test_a_zip_past_the_member_limit_is_refused_naming_the_limit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("autograder.grading.submission.MAX_ZIP_MEMBERS", 5)
    z = _zip(tmp_path / "carol.zip", {f"f{i}.txt": "" for i in range(6)})
    with pytest.raises(SubmissionError, match=r"carol.zip holds 6 files and folders, more "
                                              r"than 5, the limit"):
        extract_zip(z, tmp_path)


def test_a_zip_bomb_is_refused_naming_the_limit(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("autograder.grading.submission.MAX_ZIP_BYTES", 2 * 1024 * 1024)
    z = tmp_path / "carol.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("data.bin", b"\0" * (3 * 1024 * 1024))
    assert z.stat().st_size < 100_000
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(SubmissionError, match="carol.zip unpacks to more than 2 MB, the limit"):
        extract_zip(z, dest)


def test_a_zip_that_lies_about_its_sizes_is_still_bounded(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Declared sizes under the limit, content over it: counted while writing."""
    monkeypatch.setattr("autograder.grading.submission.MAX_ZIP_BYTES", 1024 * 1024)
    z = tmp_path / "carol.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for i in range(3):
            zf.writestr(f"part{i}.bin", b"\0" * (400 * 1024))
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(SubmissionError, match="more than 1 MB"):
        extract_zip(z, dest)


@pytest.mark.parametrize("content", [b"not a zip at all", b"PK\x03\x04" + b"\0" * 40, b""])
def test_a_broken_zip_is_a_submission_error_for_the_student(tmp_path: Path, content: bytes) -> None:
    z = tmp_path / "carol.zip"
    z.write_bytes(content)
    with pytest.raises(SubmissionError, match="carol.zip could not be unpacked, it is not a "
                                              "valid zip file"):
        extract_zip(z, tmp_path)


def test_a_truncated_zip_is_a_submission_error(tmp_path: Path) -> None:
    whole = _zip(tmp_path / "whole.zip", {"ops.py": "x = 1\n" * 10_000})
    z = tmp_path / "carol.zip"
    z.write_bytes(whole.read_bytes()[:200])
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(SubmissionError, match="carol.zip could not be unpacked"):
        extract_zip(z, dest)


def test_a_member_twice_is_refused(tmp_path: Path) -> None:
    z = tmp_path / "carol.zip"
    with zipfile.ZipFile(z, "w") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr("ops.py", "a")
        zf.writestr("ops.py", "b")
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(SubmissionError, match="carol.zip holds 'ops.py' twice"):
        extract_zip(z, dest)


# ------------------------------------------------------------ --timeout

@pytest.mark.parametrize(("value", "shown"), [(0, "0"), (-5, "-5"), (-0.5, "-0.5"),
                                              (float("nan"), "nan"), (float("inf"), "inf")])
def test_a_timeout_that_is_not_positive_is_a_usage_error_naming_it(
        tmp_path: Path, value: float, shown: str) -> None:
    with pytest.raises(ConfigError, match=rf"--timeout must be a positive number of seconds, "
                                          rf"not {shown};"):
        bulk.grade_all(assignment="a9", targets=[("x", tmp_path)], out_dir=tmp_path / "g",
                       timeout=value)
    assert not (tmp_path / "g").exists()  # refused before anything was done


def test_a_zip_nested_too_deep_is_refused_naming_the_limit(tmp_path: Path) -> None:
    """Unpacking 1100 nested folders would overflow the recursion of Path.mkdir and of
    the temp folder's removal: refused with the limit."""
    z = _zip(tmp_path / "carol.zip", {"ops.py": "", "d/" * 1100 + "x.py": ""})
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(SubmissionError, match=r"carol.zip holds a file nested in more than "
                                              r"64 folders, the limit"):
        extract_zip(z, dest)
