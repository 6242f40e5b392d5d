"""What a student sees from `autograder check`: the same table in both isolation modes, prints
with their test, -k, 80 columns, suite order with category subtotals, and a platform
without the Linux sandbox (no pwd, resource or namespaces: macOS, Windows)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from course_cli import ag

# Loaded by every Python started with this folder on PYTHONPATH: `import pwd` and `import
# resource` fail, os.unshare is gone, as on a platform without them.
NO_UNIX = '''
import importlib.abc, os, sys

class _NoUnix(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in ("pwd", "resource"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

for _name in ("pwd", "resource"):
    sys.modules.pop(_name, None)
sys.meta_path.insert(0, _NoUnix())
if hasattr(os, "unshare"):
    del os.unshare
'''

ORDERED_TESTS = '''
import pytest


@pytest.mark.tags("convergence")
def test_b():
    """b comes first in the suite"""


@pytest.mark.tags("gradients")
@pytest.mark.points(2)
def test_a():
    """a comes second"""


@pytest.mark.tags("shapes")
def test_c():
    """c comes third, with a name long enough that the table has to fold it over two or three lines"""
'''


def _no_unix_env(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "no_unix"
    site.mkdir()
    (site / "sitecustomize.py").write_text(NO_UNIX)
    return {**os.environ, "PYTHONPATH": str(site)}


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_the_simulated_platform_has_no_pwd_resource_or_unshare(tmp_path: Path) -> None:
    probe = ("import os\nfor m in ('pwd', 'resource'):\n    try:\n        __import__(m)\n"
             "        print('has', m)\n    except ImportError:\n        pass\n"
             "print('unshare' if hasattr(os, 'unshare') else 'no unshare')\n")
    proc = subprocess.run([sys.executable, "-c", probe], env=_no_unix_env(tmp_path),
                          capture_output=True, text=True, check=True)
    assert proc.stdout.split() == ["no", "unshare"], proc.stdout


def test_check_without_the_linux_sandbox_runs_in_process_with_one_note(
        course: Path, tmp_path: Path) -> None:
    folder = course / "assignments" / "a9_tiny"
    proc = _run(["check", "a9"], folder, _no_unix_env(tmp_path))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out  # the template fails its test: no crash
    assert "Traceback" not in out, out
    assert "relu keeps positive values" in proc.stdout and "FAIL" in proc.stdout
    notes = [ln for ln in proc.stdout.splitlines() if "sandbox" in ln.lower()]
    assert notes == ["No sandbox on this machine (this Python has no pwd, resource module): your "
                     "code ran in-process, as with --isolation none; graders run it in the "
                     "sandbox."], proc.stdout
    assert "NotImplementedError" in proc.stdout  # the test's failure, as in the sandbox


def test_grade_without_the_linux_sandbox_still_refuses(course: Path, tmp_path: Path) -> None:
    proc = _run(["grade", "a9", "solutions/a9_tiny", "-o", "r.json"], course,
                _no_unix_env(tmp_path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "sandbox cannot run on this machine" in proc.stdout
    assert "--isolation none" in proc.stdout  # the way out, for whoever really wants it
    assert "Traceback" not in proc.stdout + proc.stderr
    import json

    data = json.loads((course / "r.json").read_text())
    assert data["score"] == 0 and data["tests"]


def _table(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    end = next(i for i, ln in enumerate(lines) if ln.startswith("└"))
    return lines[: end + 1]


def test_in_process_check_shows_the_sandboxed_table_and_prints_with_their_test(
        course: Path) -> None:
    folder = course / "assignments" / "a9_tiny"
    (folder / "ops.py").write_text(
        "def relu(x):\n    print('relu got', x.tolist())\n    return x * 0\n")
    runs = {mode: ag("check", "a9", "--isolation", mode, cwd=folder) for mode in ("sandbox", "none")}
    for mode, proc in runs.items():
        out = proc.stdout + proc.stderr
        assert proc.returncode == 1, (mode, out)
        for noise in ("proxy.py", "test session starts", "FAILURES", "autograder/grading",
                      "Traceback"):
            assert noise not in out, (mode, noise, out)
        section = out[out.index("─ relu keeps positive values ─"):]
        assert "Your code printed:\nrelu got [1.0, 2.0]" in section, (mode, out)
    assert _table(runs["none"].stdout) == _table(runs["sandbox"].stdout)
    assert len(runs["none"].stdout.splitlines()) < 40, runs["none"].stdout


def test_check_rows_keep_suite_order_with_category_subtotals_in_80_columns(course: Path) -> None:
    folder = course / "assignments" / "a9_tiny"
    (folder / "tests" / "test_ordered.py").write_text(ORDERED_TESTS)
    proc = ag("check", "a9", cwd=folder)
    table = _table(proc.stdout)
    assert all(len(ln) <= 80 for ln in table), "\n".join(table)
    rows = [[c.strip() for c in ln.split("│")[1:5]] for ln in table if ln.startswith("│")]
    firsts = [r[1] for r in rows if r[1] and r[0]]
    assert firsts[:4] == ["relu keeps positive values", "b comes first in the suite",
                          "a comes second", "c comes third, with a name long enough that"]
    subtotals = [(r[0], r[3]) for r in rows if r[1] == "subtotal"]
    # categories in the assignment's order, "other" (untagged) last
    assert subtotals == [("gradients", "2/2"), ("shapes", "1/1"), ("convergence", "1/1"),
                         ("other", "0/1")], proc.stdout
    assert "score on public tests: 4 / 5" in proc.stdout


def test_check_k_runs_a_subset_and_names_a_pattern_that_matches_nothing(course: Path) -> None:
    folder = course / "assignments" / "a9_tiny"
    (folder / "tests" / "test_ordered.py").write_text(ORDERED_TESTS)
    proc = ag("check", "a9", "-k", "test_a or test_c", cwd=folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "a comes second" in proc.stdout and "c comes third" in proc.stdout
    assert "relu keeps" not in proc.stdout and "b comes first" not in proc.stdout
    assert "score on public tests: 3 / 3 (only -k 'test_a or test_c')" in proc.stdout
    proc = ag("check", "a9", "-k", "convolution", cwd=folder)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "-k 'convolution' matches none of the public tests" in proc.stdout


@pytest.mark.skipif(sys.platform != "linux", reason="the sandboxed side needs Linux")
def test_sandbox_unavailable_is_none_here() -> None:
    from autograder.sandbox.local import sandbox_unavailable

    assert sandbox_unavailable() is None


def test_a_syntax_error_is_shown_once_with_its_line_and_a_caret(course: Path) -> None:
    folder = course / "assignments" / "a9_tiny"
    (folder / "ops.py").write_text("import numpy as np\n\n\ndef relu(x):\n"
                                   "    return np.maximum(0, x\n")
    for mode in ("sandbox", "none"):
        proc = ag("check", "a9", "--isolation", mode, cwd=folder)
        out = proc.stdout
        assert proc.returncode == 1, out + proc.stderr
        assert out.count("SyntaxError: '(' was never closed") == 1, out
        assert 'File "ops.py", line 5\n    return np.maximum(0, x\n                     ^' in out, out
        assert ("SyntaxError in the import of ops: a syntax error (ops.py, line 5), shown "
                "once above the failures: fix it first") in out, out
        assert "Importing ops failed" not in out and "/tmp/" not in out, out


def test_a_syntax_error_in_a_notebook_names_its_cell(course: Path) -> None:
    import nbformat

    folder = course / "assignments" / "a9_tiny"
    (folder / "ops.py").unlink()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# ops"),
                nbformat.v4.new_code_cell("import numpy as np"),
                nbformat.v4.new_code_cell("def relu(x):\n    return np.maximum(0, x")]
    (folder / "ops.ipynb").write_text(nbformat.writes(nb))
    proc = ag("check", "a9", cwd=folder)
    assert 'File "ops.ipynb", cell 3, line 2' in proc.stdout, proc.stdout
    assert "a syntax error (ops.ipynb, cell 3, line 2), shown once" in proc.stdout
    assert proc.stdout.count("SyntaxError: '(' was never closed") == 1, proc.stdout


def test_a_helper_module_gets_one_message_for_both_symptoms(course: Path) -> None:
    folder = course / "assignments" / "a9_tiny"
    (folder / "helpers.py").write_text("def clip(x):\n    return x * (x > 0)\n")
    (folder / "ops.py").write_text("from helpers import clip\n\n\ndef relu(x):\n"
                                   "    return clip(x)\n")
    proc = ag("check", "a9", cwd=folder)
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    notes = [ln for ln in out.splitlines() if "helpers.py" in ln]
    assert notes[0].startswith("helpers.py is not part of the assignment, so the graders never "
                               "load it: `import helpers` (ops.py, line 1) fails with "
                               "ModuleNotFoundError in every test that uses ops."), out
    assert "move what ops.py needs from helpers.py into ops.py" in notes[0]
    assert "helpers.py (not part" not in out and "Importing ops failed" not in out, out
    assert "No module named 'helpers': helpers.py is not part of the assignment (see above)" in out


def test_paths_in_what_the_code_printed_are_the_students_files(course: Path) -> None:
    folder = course / "assignments" / "a9_tiny"
    (folder / "ops.py").write_text(
        "import numpy as np\n\n\ndef relu(x):\n    print('in', __file__)\n"
        "    return np.log(x * 0) * 0 + np.maximum(0, x)\n")
    for mode in ("sandbox", "none"):
        proc = ag("check", "a9", "--isolation", mode, cwd=folder)
        out = proc.stdout
        assert "ops.py:6: RuntimeWarning: divide by zero encountered in log" in out, (mode, out)
        assert "in ops.py\n" in out, (mode, out)
        for leak in ("/tmp/", "autograder-grade", "/work"):
            assert leak not in out, (mode, leak, out)


def test_editing_one_twin_as_the_readme_says_gives_no_twin_warning(course: Path) -> None:
    """The template has ops.py and ops.ipynb; the student edits ops.py only: nothing is said
    about the notebook. Editing both: one line says which one is graded, and why."""
    import nbformat

    folder = course / "assignments" / "a9_tiny"
    shutil_copy = (course / "solutions" / "a9_tiny" / "ops.py").read_text()
    (folder / "ops.py").write_text(shutil_copy)
    proc = ag("check", "a9", cwd=folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ipynb" not in proc.stdout, proc.stdout
    nb = nbformat.read(folder / "ops.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("SCRATCH = 1"))
    nbformat.write(nb, folder / "ops.ipynb")
    proc = ag("check", "a9", cwd=folder)
    assert ("ops.ipynb (not graded: ops.py and ops.ipynb were both edited; ops.py is graded, "
            "as it has fewer TODO stubs left") in proc.stdout, proc.stdout


def test_breakpoint_reaches_the_terminal_in_process(course: Path) -> None:
    """--isolation none: pytest's report is left out, yet breakpoint() suspends the capture
    and talks to the terminal (here: stdin), then the table follows."""
    folder = course / "assignments" / "a9_tiny"
    (folder / "ops.py").write_text("import numpy as np\n\n\ndef relu(x):\n"
                                   "    y = np.maximum(0, x)\n    breakpoint()\n    return y\n")
    proc = subprocess.run([sys.executable, "-m", "autograder", "check", "a9", "--isolation",
                           "none"], cwd=folder, input="p y.tolist()\nc\n", capture_output=True,
                          text=True, timeout=120, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "(Pdb) [1.0, 2.0]" in out, out
    assert out.index("(Pdb)") < out.index("Public tests") and "score on public tests: 1 / 1" in out


def test_plain_pytest_loads_the_plugin_without_the_linux_sandbox(course: Path, tmp_path: Path) -> None:
    """The plugin is loaded by every pytest run of the venv (an entry point): on a platform
    without pwd/resource it must load, and a run with --submission grades in-process."""
    folder = course / "assignments" / "a9_tiny"
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests", "--submission", ".", "-q",
                           "-p", "no:cacheprovider"], cwd=folder, env=_no_unix_env(tmp_path),
                          capture_output=True, text=True, timeout=300, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out  # the template's test fails; pytest itself is fine
    assert "INTERNALERROR" not in out and "No module named 'pwd'" not in out, out
    assert "1 failed" in out, out
