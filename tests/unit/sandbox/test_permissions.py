"""Hidden material by file modes (no mount namespace: docker run, Gradescope)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from autograder.sandbox.permissions import hide_by_permissions, is_shared_tmp, reachable_by_others

as_root = pytest.mark.skipif(os.getuid() != 0, reason="reading as another uid needs root")


@pytest.fixture
def tmp_path():
    """A folder every user can reach (pytest's own lies under a 0700 folder)."""
    base = Path(tempfile.mkdtemp(prefix="agperm-"))
    base.chmod(0o755)
    yield base
    for p in [base, *base.rglob("*")]:
        if p.is_dir() and not p.is_symlink():
            p.chmod(0o755)
    shutil.rmtree(base)


def _course(tmp_path: Path) -> Path:
    """A checkout with the harness's venv inside, every entry readable by everyone."""
    root = tmp_path / "checkout"
    for d in ("reference_tests/a1", "solutions/a1", ".git", ".venv/lib", "autograder", "examples"):
        (root / d).mkdir(parents=True)
    (root / "reference_tests/a1/conftest.py").write_text("SEED = 123\n")
    (root / "solutions/a1/layers.py").write_text("SOLUTION\n")
    (root / ".venv/lib/site.py").write_text("# interpreter\n")
    (root / "autograder/__init__.py").write_text("")
    (root / "README.md").write_text("readme\n")
    for p in [tmp_path, root, *root.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return root


def _read_as_nobody(path: Path) -> str:
    """What uid 65534 (no groups) gets when it opens ``path``: 'ok' or the error."""
    code = ("import os, sys\nos.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
            "try:\n    open(sys.argv[1]).read(); print('ok')\n"
            "except OSError as e:\n    print(type(e).__name__)\n")
    return subprocess.run([sys.executable, "-I", "-c", code, str(path)], capture_output=True,
                          text=True, check=True).stdout.strip()


def test_course_folders_close_but_the_way_to_the_interpreter_stays(tmp_path):
    root = _course(tmp_path)
    report = hide_by_permissions([root], keep=[root / ".venv", root / "autograder"])
    assert report.ok, report.detail()
    mode = stat.S_IMODE(os.stat(root).st_mode)
    assert mode & stat.S_IXOTH and not mode & stat.S_IROTH  # pass through, no listing
    for closed in ("reference_tests", "solutions", ".git", "examples", "README.md"):
        assert not reachable_by_others(root / closed), closed
        assert str(root / closed) in report.changed
    assert reachable_by_others(root / ".venv" / "lib" / "site.py")
    assert reachable_by_others(root / "autograder")
    assert "other users cannot read" in report.detail()


def test_a_folder_without_the_interpreter_closes_whole(tmp_path):
    root = _course(tmp_path)
    report = hide_by_permissions([root / "solutions", root / "reference_tests"], keep=[])
    assert report.ok and not reachable_by_others(root / "solutions" / "a1" / "layers.py")
    assert stat.S_IMODE(os.stat(root / "solutions").st_mode) == 0o750


def test_shared_temp_folders_are_left_alone(tmp_path):
    shared = tmp_path / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    assert is_shared_tmp(shared)
    report = hide_by_permissions([shared], keep=[])
    assert report.ok and report.shared == [str(shared)]
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o1777


def test_already_closed_folders_are_not_touched(tmp_path):
    root = _course(tmp_path)
    (root / "solutions").chmod(0o700)
    report = hide_by_permissions([root / "solutions"], keep=[])
    assert report.ok and report.changed == []


@as_root
def test_the_workers_uid_can_no_longer_read_hidden_tests(tmp_path):
    root = _course(tmp_path)
    secret = root / "reference_tests" / "a1" / "conftest.py"
    assert _read_as_nobody(secret) == "ok"  # the attack works before
    assert hide_by_permissions([root], keep=[root / ".venv", root / "autograder"]).ok
    assert _read_as_nobody(secret) == "PermissionError"
    assert _read_as_nobody(root / "solutions" / "a1" / "layers.py") == "PermissionError"
    assert _read_as_nobody(root / ".venv" / "lib" / "site.py") == "ok"


def test_read_only_file_system_is_reported_not_raised(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A container with a read-only root: the modes cannot change. The grader must not
    crash; what stays readable is reported (then the policy refuses to grade)."""
    import errno

    from autograder.sandbox import permissions

    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / "test_secret.py").write_text("SECRET\n")

    def read_only(path: object, mode: int) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(permissions.os, "chmod", read_only)
    report = hide_by_permissions([hidden], keep=[])
    assert not report.ok and report.exposed == [str(hidden)]
    assert "could not hide" in report.detail()
