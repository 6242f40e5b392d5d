"""The pytest plugin end to end: markers and fixtures reach results.json, both isolation
modes agree, broken hidden suites fail closed, broken submissions are graded.

Graded runs happen in subprocesses (the plugin starts a zygote and workers). Fixture
assignments live in tests/fixtures/plugin/ and are copied to a temporary folder first.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from autograder.grading import results
from autograder.grading.notebooks import source_to_notebook, write_notebook

pytest_plugins = ["pytester"]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "plugin"
from autograder.grading.runner import GRADING_INI  # noqa: E402

IGNORE = shutil.ignore_patterns("__pycache__", "conftest.py", ".pytest_cache")


def copy_fixture(name: str, dest: Path) -> Path:
    shutil.copytree(FIXTURES / name, dest / name, ignore=IGNORE)
    return dest / name


def strict_load(path: Path) -> dict[str, Any]:
    def refuse(const: str) -> None:
        raise ValueError(f"{path} holds non-standard JSON ({const})")

    data = json.loads(path.read_text(), parse_constant=refuse)
    results.validate(data)
    return data


def grade(pytester: pytest.Pytester, ref: Path, sub: Path, *args: str,
          isolation: str = "sandbox", tests: list[Path] | None = None):
    """One graded run in a subprocess, as `autograder grade` does it (same ini, rootdir)."""
    out = pytester.path / f"results-{len(list(pytester.path.glob('results-*.json')))}.json"
    run = pytester.runpytest_subprocess(
        *map(str, tests or [ref]), "-c", str(GRADING_INI), "--rootdir", str(ref),
        "--submission", str(sub), "--ag-results", str(out), "--isolation", isolation,
        "-p", "no:randomly", *args, timeout=120)
    assert out.is_file(), run.stdout.str() + run.stderr.str()
    return run, strict_load(out)


def by_name(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    tests = {t["name"]: t for t in data["tests"]}
    assert len(tests) == len(data["tests"]), "test names must be unique in these fixtures"
    return tests


@pytest.fixture
def markers(pytester: pytest.Pytester) -> Path:
    return copy_fixture("markers", pytester.path)


# --------------------------------------------------------------------- markers & fixtures

def test_markers_and_fixtures_reach_results(pytester, markers):
    run, data = grade(pytester, markers / "ref", markers / "good")
    t = by_name(data)
    assert set(t) == {
        "Adds two arrays", "test_markers.py::test_no_docstring",
        "Matrix product has the right shape", "Runs on CUDA", "Partial credit on failure",
        "Partial credit on success", "Leaderboard entries", "Student exception reaches the output",
        "Slow call hits the marker's timeout", "Chatty student code"}

    # points, tags, visibility (marker and assignment default), name from the docstring
    add = t["Adds two arrays"]
    assert (add["score"], add["max_score"], add["status"]) == (3, 3, "passed")
    assert add["tags"] == ["gradients", "core"] and add["visibility"] == "visible"
    nodoc = t["test_markers.py::test_no_docstring"]
    assert (nodoc["max_score"], nodoc["visibility"], nodoc["tags"]) == (1, "after_due_date", [])
    assert t["Matrix product has the right shape"]["tags"] == ["shapes"]

    # gpu: not run, not counted
    gpu = t["Runs on CUDA"]
    assert gpu["max_score"] == 0 and gpu["score"] == 0 and gpu["status"] == "passed"
    assert "CUDA" in gpu["output"] and gpu["tags"] == ["parity"]

    # partial credit on failure and on success
    pf = t["Partial credit on failure"]
    assert (pf["score"], pf["max_score"], pf["status"]) == (1, 4, "failed")
    pp = t["Partial credit on success"]
    assert (pp["score"], pp["max_score"], pp["status"]) == (1, 2, "passed")

    # leaderboard: later entries of the same name replace earlier ones
    board = sorted(data["leaderboard"], key=lambda e: e["name"])
    label = board.pop(1)
    assert board == [{"name": "accuracy", "value": 0.95, "order": "desc"},
                     {"name": "runtime", "value": 12.0, "order": "asc"}]
    assert label["name"] == "label" and label["value"].startswith("a\\x1b[31mlong")
    assert len(label["value"]) < 220

    # student exceptions: type, message and the student's file and line
    err = t["Student exception reaches the output"]
    assert err["score"] == 0 and err["max_score"] == 0.5
    assert "ValueError in calc.explode: kaput" in err["output"] and 'File "calc.py", line 19' in err["output"]
    assert "autograder/" not in err["output"]

    # call_timeout marker: the test fails with a message naming the call
    slow = t["Slow call hits the marker's timeout"]
    assert slow["status"] == "failed" and "0.5 s" in slow["output"] and "calc.slow" in slow["output"]

    # student stdout: shown, capped, with a note
    chatty = t["Chatty student code"]
    assert chatty["status"] == "passed"
    assert chatty["output"].startswith("Your code printed:\nline 00000 ")
    assert "line 02999" not in chatty["output"]
    assert len(chatty["output"]) <= results.MAX_STUDENT_STDOUT + 300
    left_out = 3000 * 52 - results.MAX_STUDENT_STDOUT
    assert chatty["output"].endswith(
        f"[output truncated: {left_out} bytes left out; the first {results.MAX_STUDENT_STDOUT} "
        f"of {3000 * 52} bytes are shown]"), chatty["output"][-300:]

    # totals: unavailable tests are out of the maximum
    assert data["score"] == pytest.approx(3 + 1 + 2 + 1 + 1 + 1 + 1)
    assert sum(x["max_score"] for x in data["tests"]) == pytest.approx(3 + 1 + 2 + 4 + 2 + 1 + 0.5 + 1 + 1)
    assert data["extra_data"]["assignment"] == "p1" and data["extra_data"]["isolation"] == "sandbox"
    assert data["extra_data"]["submission"]["graded"] == {"calc": "calc.py"}
    assert "Files graded: calc.py" in data["output"]
    run.assert_outcomes(passed=6, failed=3, skipped=1)


def test_hint_reaches_results_of_a_failing_test(pytester, markers):
    _, data = grade(pytester, markers / "ref", markers / "wrong", isolation="none",
                    tests=[Path(f"{markers}/ref/test_markers.py::test_with_hint")])
    (entry,) = data["tests"]
    assert entry["status"] == "failed"
    assert "Remember to transpose the weights" in json.dumps(entry)


def test_isolation_modes_give_the_same_scores(pytester, markers):
    seen = {}
    for sub in ("good", "wrong"):
        for mode in ("sandbox", "none"):
            _, data = grade(pytester, markers / "ref", markers / sub, "--deselect",
                            "test_markers.py::test_gpu", isolation=mode,
                            tests=[markers / "ref" / "test_markers.py"])
            assert data["extra_data"]["isolation"] == mode
            seen[sub, mode] = ([(t["name"], t["score"], t["max_score"], t["status"])
                                for t in data["tests"]], data["score"], data.get("leaderboard"))
        assert seen[sub, "sandbox"] == seen[sub, "none"]
    assert seen["good", "none"][1] == 9 and seen["wrong", "none"][1] == 4
    none_run = by_name(data)
    assert none_run["Adds two arrays"]["status"] == "failed"  # wrong submission, in-process


def test_in_process_mode_says_the_sandbox_is_off(pytester, markers):
    _, data = grade(pytester, markers / "ref", markers / "good", isolation="none",
                    tests=[Path(f"{markers}/ref/test_markers.py::test_add")])
    prot = {p["name"]: p for p in data["extra_data"]["protections"]}
    assert prot["isolation"]["active"] is False
    assert "protections" in data["output"].lower() and "isolation" in data["output"]


BAD_MARKERS = {
    "points-str": ('@pytest.mark.points("two")', "points"),
    "points-negative": ("@pytest.mark.points(-1)", "points"),
    "points-bool": ("@pytest.mark.points(True)", "points"),
    "points-two-args": ("@pytest.mark.points(1, 2)", "points"),
    "visibility-unknown": ('@pytest.mark.visibility("public")', "visibility"),
    "tags-empty": ("@pytest.mark.tags()", "tags"),
    "tags-not-str": ("@pytest.mark.tags(3)", "tags"),
    "call-timeout-zero": ("@pytest.mark.call_timeout(0)", "call_timeout"),
    "hint-not-str": ("@pytest.mark.hint(42)", "hint"),
}


@pytest.mark.parametrize("case", BAD_MARKERS)
def test_bad_marker_arguments_fail_collection_naming_the_test(pytester, markers, case):
    decorator, marker = BAD_MARKERS[case]
    ref = pytester.mkdir("badref")
    shutil.copy(markers / "ref" / "assignment.toml", ref)
    (ref / "test_bad.py").write_text(
        "import pytest\n\n\ndef test_fine(student):\n    pass\n\n\n"
        f"{decorator}\ndef test_misconfigured(student):\n    pass\n")
    run, data = grade(pytester, ref, markers / "good", isolation="none")
    assert run.ret != 0
    text = run.stdout.str() + run.stderr.str()
    assert "test_bad.py::test_misconfigured" in text and marker in text
    # and the results are fail-closed: nothing earned, the staff see why
    assert data["extra_data"]["harness_error"] is True and data["score"] == 0
    staff = [t for t in data["tests"] if t["visibility"] == "hidden"]
    assert len(staff) == 1 and "test_misconfigured" in staff[0]["output"]


def test_plugin_is_inert_without_a_submission(pytester):
    pytester.makepyfile(test_plain="""
        import pytest

        @pytest.mark.points(2)
        def test_plain():
            assert 1 + 1 == 2

        def test_needs_student(student):
            pass
    """)
    run = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--strict-markers")
    run.assert_outcomes(passed=1, errors=1)
    run.stdout.fnmatch_lines(["*--submission*"])


# --------------------------------------------------------------------- autograder.grading.runner

DRIVER = r"""
import json, sys
from pathlib import Path
from autograder.grading.runner import Suite, run_suite

out = []
for job in json.loads(sys.argv[1]):
    ref = Path(job["ref"])
    suite = Suite(tests=[ref], config=Path(job.get("config", ref / "assignment.toml")),
                  support=None, rootdir=ref, hide=[])
    outcome = run_suite(suite=suite, submission=Path(job["sub"]), output=Path(job["out"]),
                        isolation=job["isolation"])
    on_disk = json.loads(Path(job["out"]).read_text())
    out.append({"exit_code": int(outcome.exit_code), "exit_name": outcome.exit_code.name,
                "data": outcome.data, "same_on_disk": on_disk == outcome.data})
print("@@RESULT@@" + json.dumps(out))
"""

BROKEN_FILES = {
    "syntax/calc.py": "def add(a, b):\n    return a +\n",
    "notebook/calc.ipynb": '{"cells": [ this is not json\n',
}
HIDDEN_TYPO = (
    "def test_staff_typo(student)\n"
    '    """A syntax error in the hidden suite: the grader\'s fault, not the student\'s"""\n'
    '    assert student.module("calc").add(1, 1) == 2\n')

PROBLEMS = {
    # scenario: (submission folder, fragments the failing test's output must contain)
    "syntax": ("syntax", ["SyntaxError", "calc.py", "line 2"]),
    "import_error": ("import_error", ["RuntimeError", "setup failed", 'calc.py", line 2']),
    "bad_import": ("bad_import", ["ModuleNotFoundError", "not_a_real_module_xyz", 'calc.py", line 1']),
    "missing": ("missing", ["calc.py", "missing"]),
    "signature": ("signature", ["TypeError", "add()"]),
    "notebook": ("notebook", ["calc.ipynb"]),
    "notebook_raises": ("notebook_raises", ["RuntimeError", "calc.ipynb\", cell 2, line 2"]),
    "empty": ("empty", ["calc.py", "missing"]),
    "unrelated": ("unrelated", ["calc.py", "missing"]),
}


@pytest.fixture(scope="module")
def graded_problems(tmp_path_factory) -> dict[tuple[str, str], dict[str, Any]]:
    """Every broken submission (and two broken suites) through run_suite, in one subprocess."""
    root = tmp_path_factory.mktemp("problems")
    problems = copy_fixture("problems", root)
    broken = copy_fixture("broken", root)
    good = copy_fixture("markers", root) / "good"
    # files that are broken on purpose are written here, so linters never see them
    subs = problems / "subs"
    for name, content in BROKEN_FILES.items():
        (subs / name).parent.mkdir(parents=True, exist_ok=True)
        (subs / name).write_text(content)
    (subs / "empty").mkdir()
    (subs / "notebook_raises").mkdir()
    nb = source_to_notebook("def add(a, b):\n    return a + b\n\n\n"
                            "x = 1\nraise RuntimeError('cell two fails')\n")
    write_notebook(nb, subs / "notebook_raises" / "calc.ipynb")
    (broken / "ref" / "test_typo.py").write_text(HIDDEN_TYPO)
    jobs = []
    for scenario, (folder, _) in PROBLEMS.items():
        for mode in ("sandbox", "none"):
            jobs.append({"key": [scenario, mode], "ref": str(problems / "ref"),
                         "sub": str(problems / "subs" / folder), "isolation": mode,
                         "out": str(root / f"{scenario}-{mode}.json")})
    jobs.append({"key": ["broken-suite", "sandbox"], "ref": str(broken / "ref"), "sub": str(good),
                 "isolation": "sandbox", "out": str(root / "broken.json")})
    preload = root / "preload"  # a sandbox that cannot start: the zygote's preload fails
    shutil.copytree(problems / "ref", preload)
    (preload / "test_problems.py").rename(preload / "test_preload.py")  # no module clash
    toml = preload / "assignment.toml"
    toml.write_text(toml.read_text().replace('preload = ["numpy"]', 'preload = ["no_such_module_xyz"]'))
    jobs.append({"key": ["bad-preload", "sandbox"], "ref": str(preload), "sub": str(good),
                 "isolation": "sandbox", "out": str(root / "preload.json")})
    jobs.append({"key": ["no-config", "sandbox"], "ref": str(problems / "ref"), "sub": str(good),
                 "config": str(root / "missing" / "assignment.toml"), "isolation": "sandbox",
                 "out": str(root / "out" / "no-config.json")})
    proc = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(jobs)], capture_output=True,
                          text=True, timeout=300, cwd=root)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    answers = json.loads(proc.stdout.split("@@RESULT@@", 1)[1])
    out = {}
    for job, answer in zip(jobs, answers, strict=True):
        assert answer["same_on_disk"], job
        strict_load(Path(job["out"]))
        out[tuple(job["key"])] = answer
    return out


@pytest.mark.parametrize("mode", ["sandbox", "none"])
@pytest.mark.parametrize("scenario", PROBLEMS)
def test_broken_submission_is_graded_not_crashed(graded_problems, scenario, mode):
    answer = graded_problems[scenario, mode]
    assert answer["exit_name"] == "OK" and answer["exit_code"] == 0
    data = answer["data"]
    assert "harness_error" not in data["extra_data"]
    t = by_name(data)
    assert set(t) == {"Adds numbers", "Does not need the submission"}
    add = t["Adds numbers"]
    assert add["score"] == 0 and add["max_score"] == 1 and add["status"] == "failed"
    for fragment in PROBLEMS[scenario][1]:
        assert fragment in add["output"], (fragment, add["output"])
    assert "Traceback" not in add["output"] and "autograder/" not in add["output"]
    other = t["Does not need the submission"]
    assert (other["score"], other["max_score"], other["status"]) == (2, 2, "passed")
    assert data["score"] == 2


IMPORT_FAILS = {"syntax", "import_error", "bad_import", "notebook_raises"}


@pytest.mark.parametrize("scenario", PROBLEMS)
def test_import_failure_is_summarized_once_and_drops_unrelated_hints(graded_problems, scenario):
    data = graded_problems[scenario, "sandbox"]["data"]
    add = by_name(data)["Adds numbers"]
    summary = [ln for ln in data["output"].splitlines() if ln.startswith("Importing calc failed")]
    if scenario == "syntax":
        # shown once as Python prints it (line, source, caret), not as an import failure
        assert "Hint:" not in add["output"] and summary == []
        assert "calc.py has a syntax error, so it cannot be imported" in data["output"]
        assert 'File "calc.py", line 2' in data["output"] and "^" in data["output"]
    elif scenario in IMPORT_FAILS:
        assert "Hint:" not in add["output"]  # the hint is about add(), not the import
        assert len(summary) == 1 and PROBLEMS[scenario][1][0] in summary[0], data["output"]
        where = "(calc.ipynb, cell 2, line 2)" if scenario == "notebook_raises" else "(calc.py, line "
        assert where in summary[0], summary
    else:
        assert summary == []  # missing files are reported once already; signature: no import issue
    if scenario == "signature":
        assert "Hint: add(a, b) returns a + b" in add["output"]


def test_broken_submission_scores_agree_across_modes(graded_problems):
    for scenario in PROBLEMS:
        sandbox = [(t["name"], t["score"], t["status"]) for t in graded_problems[scenario, "sandbox"]["data"]["tests"]]
        local = [(t["name"], t["score"], t["status"]) for t in graded_problems[scenario, "none"]["data"]["tests"]]
        assert sandbox == local, scenario


def test_submission_problems_are_reported_at_the_top(graded_problems):
    unrelated = graded_problems["unrelated", "sandbox"]["data"]
    assert "notes.txt (not part of the assignment)" in unrelated["output"]
    assert "helper.py" in unrelated["output"] and "calc.py" in unrelated["output"]
    assert unrelated["extra_data"]["submission"]["graded"] == {}
    assert "calc" in unrelated["extra_data"]["submission"]["problems"]
    notebook = graded_problems["notebook", "sandbox"]["data"]
    assert "calc.ipynb" in notebook["extra_data"]["submission"]["problems"]["calc"]
    missing = graded_problems["missing", "sandbox"]["data"]
    assert "calc_final.py" in missing["output"]


def test_broken_hidden_suite_fails_closed(graded_problems):
    answer = graded_problems["broken-suite", "sandbox"]
    assert answer["exit_name"] == "HARNESS_ERROR" and answer["exit_code"] != 0
    data = answer["data"]
    assert data["extra_data"]["harness_error"] is True
    assert data["score"] == 0 and all(t["score"] == 0 for t in data["tests"])
    graded = [t for t in data["tests"] if t["visibility"] != "hidden"]
    # The file that does not parse still has its test listed (by name, 0 points).
    assert {t["name"] for t in graded} == {"Adds numbers", "Needs nothing", "test_staff_typo"}
    assert all(t["status"] == "failed" and "Not graded" in t["output"] for t in graded)
    assert sum(t["max_score"] for t in graded) == 3  # the maximum is still known
    (staff,) = [t for t in data["tests"] if t["visibility"] == "hidden"]
    assert staff["max_score"] == 0 and "test_typo.py" in staff["output"]
    assert "SyntaxError" in staff["output"] or "invalid syntax" in staff["output"]
    assert "test_typo" not in data["output"]  # details for staff only


def test_grading_that_cannot_start_fails_closed(graded_problems):
    answer = graded_problems["no-config", "sandbox"]
    assert answer["exit_name"] == "HARNESS_ERROR"
    data = answer["data"]
    assert data["extra_data"]["harness_error"] is True and data["score"] == 0
    # collected, not run: every test by its name and points, at 0
    tests = {t["name"]: t for t in data["tests"] if t["visibility"] != "hidden"}
    assert set(tests) == {"Adds numbers", "Does not need the submission"}
    assert all(t["score"] == 0 and t["max_score"] > 0 for t in tests.values()), tests
    (staff,) = [t for t in data["tests"] if t["visibility"] == "hidden"]
    assert staff["score"] == 0 and staff["output"]


def test_grading_that_cannot_start_tells_staff_why(graded_problems):
    (staff,) = [t for t in graded_problems["no-config", "sandbox"]["data"]["tests"]
                if t["visibility"] == "hidden"]
    assert "assignment.toml" in staff["output"] and "CourseError" in staff["output"]


def test_sandbox_that_cannot_start_fails_closed(graded_problems):
    answer = graded_problems["bad-preload", "sandbox"]
    assert answer["exit_name"] == "HARNESS_ERROR"
    assert answer["data"]["extra_data"].get("harness_error") is True


def test_gpu_tests_run_where_the_worker_has_cuda(pytester, markers):
    """The gpu marker asks the worker, not the grader process: a worker whose
    cuda_available probe answers yes (simulated in-process: this machine has no CUDA)
    runs the gpu test and counts it; the sandboxed worker here says no and it is
    reported as not run, out of the maximum."""
    (pytester.path / "simulated_cuda.py").write_text(
        "from autograder import probes\n"
        "probes.PROBES['cuda_available'] = lambda: True  # a CUDA-capable worker\n")
    pytester.syspathinsert(pytester.path)
    only_gpu = [Path(f"{markers}/ref/test_markers.py::test_gpu")]
    _, data = grade(pytester, markers / "ref", markers / "good", "-p", "simulated_cuda",
                    isolation="none", tests=only_gpu)
    (gpu,) = data["tests"]
    assert data["extra_data"]["cuda"] is True
    assert gpu["max_score"] > 0 and gpu["status"] == "failed"  # it ran, and counts
    assert "must not run without CUDA" in gpu["output"]

    _, data = grade(pytester, markers / "ref", markers / "good", tests=only_gpu)
    (gpu,) = data["tests"]
    assert data["extra_data"]["cuda"] is False
    assert gpu["max_score"] == 0 and "Not run: needs CUDA" in gpu["output"]
