"""The CLI as users run it, on a tiny course repository (tests/fixtures/authoring/course)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from course_cli import ag, run_one_file_suite

from autograder import cli
from autograder.errors import ExitCode
from autograder.grading import results


def test_grade_solution_full_marks_and_valid_results(course: Path) -> None:
    proc = ag("grade", "a9", "solutions/a9_tiny", "-o", "out/results.json", cwd=course)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((course / "out" / "results.json").read_text())
    results.validate(data)
    assert data["score"] == sum(t["max_score"] for t in data["tests"]) == 2
    assert "2 / 2 points" in proc.stdout


def test_grade_template_scores_zero_but_exits_zero(course: Path) -> None:
    proc = ag("grade", "a9", "assignments/a9_tiny", "-o", "r.json", cwd=course)
    assert proc.returncode == 0
    data = json.loads((course / "r.json").read_text())
    assert data["score"] == 0
    assert all("NotImplementedError" in t["output"] for t in data["tests"])


def test_grade_unknown_assignment_is_usage_error_with_results(course: Path) -> None:
    proc = ag("grade", "a7", "solutions/a9_tiny", "-o", "r.json", cwd=course)
    assert proc.returncode == 3
    assert "unknown assignment 'a7'" in proc.stdout and "a9_tiny" in proc.stdout
    results.validate(json.loads((course / "r.json").read_text()))


def test_grade_missing_submission_folder_names_it(course: Path) -> None:
    proc = ag("grade", "a9", "nowhere", "-o", "r.json", cwd=course)
    assert proc.returncode == 3  # bad usage, as the README says
    assert "nowhere" in proc.stdout
    results.validate(json.loads((course / "r.json").read_text()))


def test_check_in_student_folder_prints_table_and_fails_on_template(course: Path) -> None:
    folder = course / "assignments" / "a9_tiny"
    proc = ag("check", "a9", cwd=folder)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "relu keeps positive values" in proc.stdout
    assert "FAIL" in proc.stdout and "NotImplementedError" in proc.stdout


def test_check_passes_on_solution_files(course: Path) -> None:
    folder = course / "assignments" / "a9_tiny"
    for name in ("ops.py", "stats.py"):
        shutil.copy(course / "solutions" / "a9_tiny" / name, folder / name)
    proc = ag("check", "a9", cwd=folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "score on public tests: 1 / 1" in proc.stdout


MARKUP = "x [/dim] [red] [bold]"


def test_check_prints_student_markup_literally(course: Path) -> None:
    """Exception messages are student text: never parsed as rich markup (MarkupError)."""
    folder = course / "assignments" / "a9_tiny"
    (folder / "ops.py").write_text(f"def relu(x):\n    raise ValueError({MARKUP!r})\n")
    proc = ag("check", "a9", cwd=folder)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "MarkupError" not in proc.stdout + proc.stderr and "Traceback (most" not in proc.stderr
    assert f"ValueError in ops.relu: {MARKUP}" in proc.stdout
    assert "score on public tests: 0 / 1" in proc.stdout


def test_render_check_and_validate_print_markup_literally(capsys: pytest.CaptureFixture[str]) -> None:
    """Every cell of the check and validate tables, and the outputs, is data, not markup."""
    test = {"name": f"name {MARKUP}", "status": "failed", "score": 0, "max_score": 1,
            "tags": [f"tag {MARKUP}"], "output": f"Error: {MARKUP}\nmore [/]"}
    data = {"score": 0, "tests": [test], "output": f"Files graded: {MARKUP}.py",
            "extra_data": {"protections": [
                {"name": f"p {MARKUP}", "active": False, "detail": "why [/red]"}]}}
    assert cli.render_check(data, ExitCode.OK) == ExitCode.FAILED
    row = SimpleNamespace(assignment="a9", subject=f"mutant {MARKUP}", expect="less", score=1.0,
                          max_score=2.0, ok=False, note=f"error: {MARKUP}", broken=False,
                          seconds=1.5)
    cli._render_validate(SimpleNamespace(rows=[row]))
    out = capsys.readouterr().out
    for text in (f"name {MARKUP}", f"Error: {MARKUP}", "more [/]", f"Files graded: {MARKUP}.py",
                 f"off: p {MARKUP} (why [/red])", f"mutant {MARKUP}", f"error: {MARKUP}"):
        assert text in out, text


def test_grade_all_prints_submission_names_literally(course: Path, tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    shutil.copytree(course / "solutions" / "a9_tiny", subs / "s[bold]")
    shutil.copytree(course / "assignments" / "a9_tiny", subs / "t[red]")
    proc = ag("grade-all", "a9", str(subs), "-o", "graded", cwd=course)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "s[bold]" in proc.stdout and "t[red]" in proc.stdout


def test_check_in_folder_rejects_another_assignment(course: Path) -> None:
    """`check a7...` in a9's folder must not silently run a9's tests."""
    folder = course / "assignments" / "a9_tiny"
    proc = ag("check", "a7_anything", cwd=folder)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "a7_anything" in proc.stdout and "'a9'" in proc.stdout and "a9_tiny" in proc.stdout
    assert "relu keeps positive values" not in proc.stdout  # nothing ran
    # The id, the folder's full name and a path ending in it all match.
    for key in ("a9", "a9_tiny", "assignments/a9_tiny"):
        proc = ag("check", key, "assignments/a9_tiny", cwd=course)
        assert proc.returncode == 1, (key, proc.stdout + proc.stderr)
        assert "relu keeps positive values" in proc.stdout


def test_check_says_which_sandbox_protections_are_active(course: Path) -> None:
    folder = course / "assignments" / "a9_tiny"
    proc = ag("check", "a9", cwd=folder)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("Sandbox: active: ")]
    assert len(lines) == 1, proc.stdout
    assert "; off: " in lines[0]
    if os.getuid() == 0:  # as root every protection is in force
        assert "network" in lines[0] and "pid-namespace" in lines[0]
        assert lines[0].endswith("; off: none"), lines[0]
    proc = ag("check", "a9", "--isolation", "none", cwd=folder)
    # in-process: one line says so, not a list of protections that are all off
    assert not [ln for ln in proc.stdout.splitlines() if ln.startswith("Sandbox: ")], proc.stdout
    assert [ln for ln in proc.stdout.splitlines()
            if ln.startswith("Graded in-process (--isolation none)")], proc.stdout


def test_grade_output_folder_gets_results_json(course: Path) -> None:
    (course / "out").mkdir()
    proc = ag("grade", "a9", "solutions/a9_tiny", "-o", "out", cwd=course)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "out is a folder: writing out/results.json" in proc.stdout
    data = json.loads((course / "out" / "results.json").read_text())
    results.validate(data)
    assert data["score"] == 2


def test_grade_output_in_unwritable_place_is_usage_error(course: Path) -> None:
    (course / "afile").write_text("not a folder")
    proc = ag("grade", "a9", "solutions/a9_tiny", "-o", "afile/sub/r.json", cwd=course)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "afile/sub/r.json" in proc.stdout and "cannot be created or written" in proc.stdout
    assert (course / "afile").read_text() == "not a folder"


def test_grade_sigterm_writes_fail_closed_results(tmp_path: Path) -> None:
    """`timeout` / `docker stop` send SIGTERM: results.json must still be written."""
    root = tmp_path / "course"
    ref = root / "reference_tests" / "s1_sleep"
    ref.mkdir(parents=True)
    (ref / "assignment.toml").write_text('[assignment]\nid = "s1"\ntitle = "t"\nmodules = ["m"]\n')
    (ref / "test_s.py").write_text(
        "import os, time\nfrom pathlib import Path\n\n"
        "def test_sleeps(student):\n"
        "    '''sleeps on the grader side'''\n"
        "    assert student.module('m').f() == 1\n"
        "    Path(os.environ['AG_TEST_MARK']).write_text('sleeping')\n"
        "    time.sleep(120)\n")
    sol = root / "solutions" / "s1_sleep"
    sol.mkdir(parents=True)
    (sol / "m.py").write_text("def f():\n    return 1\n")
    mark = tmp_path / "mark"
    proc = subprocess.Popen([sys.executable, "-m", "autograder", "grade", "s1", str(sol),
                             "-o", "out/results.json"], cwd=root, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "AG_TEST_MARK": str(mark)})
    try:
        deadline = time.monotonic() + 120
        while not mark.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert mark.exists(), proc.communicate(timeout=5)
        time.sleep(1)  # well inside the test's sleep
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 2, stdout + stderr
    assert "SIGTERM" in stdout
    data = json.loads((root / "out" / "results.json").read_text())
    results.validate(data)
    assert data["score"] == 0 and data["extra_data"].get("harness_error") is True


def test_validate_reports_uncaught_mutant(course: Path) -> None:
    proc = ag("validate", "a9", cwd=course)
    # The tiny course's hidden suite never tests stats.mean: that mutant survives.
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert any("mean-off-by-one" in ln and "NO" in ln for ln in lines), proc.stdout
    assert any("solution" in ln and "yes" in ln for ln in lines)
    assert "1 check(s) failed" in proc.stdout
    # each grading's wall time, and the sum per assignment: what makes a validate slow
    assert any("solution" in ln and re.search(r"\b\d+ s\b", ln) for ln in lines), proc.stdout
    assert re.search(r"grading time \(summed over parallel jobs\): a9_tiny \d+ s", proc.stdout)


def test_validate_requires_full_marks_of_every_variant(course: Path) -> None:
    """A variant is a right answer written differently: a suite that rejects it is wrong."""
    variants = course / "solutions" / "a9_tiny" / "variants.toml"
    variants.write_text(variants.read_text() + """
[[variant]]
name = "relu_not_really"
description = "claims to be right but lets -1 through"
file = "ops.py"
find = "return np.maximum(x, 0)"
replace = "return np.maximum(x, -1)"
""")
    proc = ag("validate", "a9", cwd=course)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert any("variant relu_where" in ln and "yes" in ln for ln in lines), proc.stdout
    assert any("variant relu_not_really" in ln and "NO" in ln for ln in lines), proc.stdout
    assert "2 check(s) failed" in proc.stdout  # with the uncaught mutant of the fixture


def test_first_failure_stops_and_lists_the_rest_as_not_run(course: Path) -> None:
    proc = ag("grade", "a9", "assignments/a9_tiny", "-o", "r.json", "--first-failure", cwd=course)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((course / "r.json").read_text())
    results.validate(data)
    first, *rest = data["tests"]
    assert first["score"] == 0 and "NotImplementedError" in first["output"]
    assert rest and all(t["score"] == 0 and t["output"].startswith("Not run: the grading "
                                                                   "stopped at the first failed")
                        for t in rest), rest
    full = ag("grade", "a9", "assignments/a9_tiny", "-o", "full.json", cwd=course)
    assert full.returncode == 0
    ran = json.loads((course / "full.json").read_text())["tests"]
    assert not any(t["output"].startswith("Not run") for t in ran)  # only with the option


def test_quickest_first_orders_tests_by_earlier_durations(course: Path) -> None:
    """validate stops a mutant at its first failed test: with --quickest-first the tests
    run in the order of an earlier grading's durations, so that test is a quick one."""
    full = ag("grade", "a9", "solutions/a9_tiny", "-o", "full.json", cwd=course)
    assert full.returncode == 0, full.stdout + full.stderr
    earlier = json.loads((course / "full.json").read_text())
    names = [t["name"] for t in earlier["tests"]]
    assert len(names) >= 2
    for i, t in enumerate(earlier["tests"]):  # the last collected test, the quickest
        t["extra_data"]["duration"] = 0.0 if i == len(names) - 1 else 5.0 - i
    (course / "earlier.json").write_text(json.dumps(earlier))
    proc = ag("grade", "a9", "assignments/a9_tiny", "-o", "r.json", "--first-failure",
              "--quickest-first", "earlier.json", cwd=course)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ran = [t["name"] for t in json.loads((course / "r.json").read_text())["tests"]
           if not t["output"].startswith("Not run")]
    assert ran == [names[-1]]
    (course / "broken.json").write_text("{}")
    bad = ag("grade", "a9", "assignments/a9_tiny", "-o", "r.json", "--quickest-first",
             "broken.json", cwd=course)
    assert bad.returncode != 0
    assert "broken.json" in bad.stdout + bad.stderr and "grade the solution first" in bad.stdout + bad.stderr


def test_template_check_detects_drift(course: Path) -> None:
    assert ag("template", "--check", cwd=course).returncode == 0
    ops = course / "solutions" / "a9_tiny" / "ops.py"
    ops.write_text(ops.read_text() + "\n\ndef extra(x):\n    return x\n")
    proc = ag("template", "--check", cwd=course)
    assert proc.returncode == 1 and "ops.py" in proc.stdout
    assert "+def extra(x):" in proc.stdout and "(generated)" in proc.stdout  # the diff itself
    assert ag("template", cwd=course).returncode == 0
    assert ag("template", "--check", cwd=course).returncode == 0


def test_grade_all_table(course: Path) -> None:
    proc = ag("grade-all", "a9", "ref=solutions/a9_tiny", "tmpl=assignments/a9_tiny",
              "-o", "graded", cwd=course)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2/2" in proc.stdout and "0/2" in proc.stdout
    for name in ("ref", "tmpl"):
        results.validate(json.loads((course / "graded" / name / "results.json").read_text()))


def test_grade_all_leaves_out_only_colliding_names(course: Path) -> None:
    proc = ag("grade-all", "a9", "solutions/a9_tiny", "assignments/a9_tiny",
              "ok=solutions/a9_tiny", cwd=course)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("name collision") == 2 and "NAME=PATH" in proc.stdout
    assert "2/2" in proc.stdout  # "ok" was graded
    rows = (course / "graded" / "grades.csv").read_text().splitlines()
    assert sum(",name collision," in r for r in rows) == 2, rows


def grade_one_file_suite(tmp_path: Path, limits: str, tests: str, module: str,
                         isolation: str = "sandbox") -> dict[str, Any]:
    """Grade module m (``module``'s source) with a one-file suite (``tests``) under
    ``[limits]`` ``limits``; the results' tests by name (and "harness_error" if any)."""
    out = run_one_file_suite(tmp_path, tests, module, limits=limits, isolation=isolation)
    by_name: dict[str, Any] = {t["name"]: t for t in out.data["tests"]}
    if out.data["extra_data"].get("harness_error"):
        by_name["harness_error"] = True
    return by_name


def test_test_timeout_fails_only_that_test(tmp_path: Path) -> None:
    """[limits] test_timeout bounds a whole test (many calls each under call_timeout)."""
    by_name = grade_one_file_suite(
        tmp_path, "call_timeout = 5\ntest_timeout = 2\n",
        "def test_slow(student):\n"
        "    '''many short calls'''\n"
        "    for _ in range(100):\n"
        "        student.module('m').nap()\n\n"
        "def test_fast(student):\n"
        "    '''one call'''\n"
        "    assert student.module('m').nap() is None\n",
        "import time\n\ndef nap():\n    time.sleep(0.1)\n")
    assert by_name["many short calls"]["status"] == "failed"
    assert "Timeout" in by_name["many short calls"]["output"]
    assert by_name["one call"]["status"] == "passed"


@pytest.mark.parametrize("isolation", ["sandbox", "none"])
def test_message_limit_fails_only_the_oversized_call(tmp_path: Path, isolation: str) -> None:
    """[limits] message_mb bounds one value in either direction; the test that sent or
    received it fails with a message naming the limit, the others are unaffected."""
    by_name = grade_one_file_suite(
        tmp_path, "message_mb = 1\n",
        "import numpy as np\n\n"
        "def test_big_reply(student):\n"
        "    '''big reply'''\n"
        "    student.module('m').zeros(2_000_000)\n\n"
        "def test_big_argument(student):\n"
        "    '''big argument'''\n"
        "    student.module('m').size(np.zeros(2_000_000))\n\n"
        "def test_small(student):\n"
        "    '''small values'''\n"
        "    assert student.module('m').zeros(10).shape == (10,)\n"
        "    assert student.module('m').size(np.zeros(10)) == 10\n",
        "import numpy as np\n\ndef zeros(n):\n    return np.zeros(n)\n\n"
        "def size(x):\n    return x.size\n", isolation)
    assert by_name["small values"]["status"] == "passed", by_name["small values"]
    for name in ("big reply", "big argument"):
        assert by_name[name]["status"] == "failed"
        assert "1048576" in by_name[name]["output"] and "message_mb" in by_name[name]["output"], \
            by_name[name]["output"]
    assert "harness_error" not in by_name


def test_run_suite_twice_in_one_process(tmp_path: Path) -> None:
    """Two suites with a test file of the same name, graded one after the other by the same
    process (as a library user or a bulk runner would): each sees its own tests."""
    from autograder.grading.runner import Suite, run_suite

    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "m.py").write_text("def one():\n    return 1\n")
    names = []
    for i, expected in enumerate((1, 2)):
        ref = tmp_path / f"ref{i}"
        ref.mkdir()
        (ref / "assignment.toml").write_text(
            f'[assignment]\nid = "r{i}"\ntitle = "t"\nmodules = ["m"]\n')
        (ref / "test_same.py").write_text(
            f"def test_one(student):\n    '''one is {expected}'''\n"
            f"    assert student.module('m').one() == {expected}\n")
        out = run_suite(suite=Suite(tests=[ref], config=ref / "assignment.toml", support=None,
                                    rootdir=ref, hide=[]), submission=sub,
                        output=tmp_path / f"r{i}.json", isolation="none")
        assert "harness_error" not in out.data["extra_data"], out.data["tests"][-1]["output"]
        names += [(t["name"], t["status"]) for t in out.data["tests"]]
    assert names == [("one is 1", "passed"), ("one is 2", "failed")]


def test_usage_errors_exit_3(course: Path) -> None:
    for args in (("grade",), ("grade", "a9"), ("nonsense",), ("grade-all", "a9", "x", "-j", "two"),
                 ("grade-all", "a9", "x", "-j", "-2"), ("grade-all", "a9", "x", "--timeout", "-1"),
                 ("grade-all", "a9", "x", "--timeout", "0")):
        proc = ag(*args, cwd=course)
        assert proc.returncode == int(ExitCode.USAGE), (args, proc.stderr)
        assert "usage:" in proc.stderr
        if args[-1].startswith("-") or args[-1] == "0":
            assert repr(args[-1]) in proc.stderr, proc.stderr  # names the value


def test_version(course: Path) -> None:
    import autograder

    proc = ag("--version", cwd=course)
    assert proc.returncode == 0 and proc.stdout.strip() == f"autograder {autograder.__version__}"


def test_course_inside_the_submission_is_refused(course: Path, tmp_path: Path) -> None:
    """A submission that ships its own reference_tests/ must never be graded by them, even
    when the grader is started from inside it (the course is found from the current folder)."""
    evil = tmp_path / "evil"
    shutil.copytree(course / "assignments" / "a9_tiny", evil)
    hidden = evil / "reference_tests" / "a9_tiny"
    shutil.copytree(course / "reference_tests" / "a9_tiny", hidden)
    marker = tmp_path / "evil-test-ran"
    (hidden / "test_evil.py").write_text(
        "import pytest\n\n@pytest.mark.points(500)\ndef test_evil():\n"
        f"    '''evil'''\n    open({str(marker)!r}, 'w').close()\n")
    proc = ag("grade", "a9", ".", "-o", str(tmp_path / "r.json"), cwd=evil)
    assert proc.returncode == int(ExitCode.USAGE), proc.stdout + proc.stderr
    assert "lies inside the submission" in proc.stdout and "--course" in proc.stdout
    assert not marker.exists()
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["score"] == 0
    # Named explicitly, the real course grades it (the template scores 0, nothing of evil runs).
    proc = ag("grade", "a9", ".", "-o", str(tmp_path / "r.json"), "--course", str(course), cwd=evil)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 / 2 points" in proc.stdout and not marker.exists()
    # So does $AUTOGRADER_COURSE; a --course that is no course is a usage error naming it.
    env = dict(os.environ, AUTOGRADER_COURSE=str(course))
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", "a9", ".", "-o",
                           str(tmp_path / "r.json")], cwd=evil, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0 and not marker.exists(), proc.stdout + proc.stderr
    proc = ag("grade", "a9", ".", "--course", str(tmp_path), cwd=evil)
    assert proc.returncode == int(ExitCode.USAGE)
    assert f"--course {tmp_path} is not a course repository" in proc.stdout


def test_grade_all_leaves_out_stray_files_of_an_export(course: Path, tmp_path: Path) -> None:
    """A folder of submissions with files beside them (an export's metadata, .DS_Store) is
    still a folder of submissions; the stray files are listed, not graded."""
    subs = tmp_path / "subs"
    shutil.copytree(course / "solutions" / "a9_tiny", subs / "alice")
    shutil.copytree(course / "assignments" / "a9_tiny", subs / "bob")
    (subs / "submission_metadata.yml").write_text("alice: {}\n")
    (subs / ".DS_Store").write_bytes(b"\0")
    proc = ag("grade-all", "a9", str(subs), "-o", str(tmp_path / "graded"), cwd=course)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 submissions" in proc.stdout
    assert "left out" in proc.stdout and "submission_metadata.yml" in proc.stdout
    scores = {p.parent.name: json.loads(p.read_text())["score"]
              for p in (tmp_path / "graded").glob("*/results.json")}
    assert scores == {"alice": 2, "bob": 0}
    # One submission folder that holds a module and a subfolder is one submission.
    one = tmp_path / "one"
    shutil.copytree(course / "solutions" / "a9_tiny", one)
    (one / "extra").mkdir()
    proc = ag("grade-all", "a9", str(one), "-o", str(tmp_path / "g2"), cwd=course)
    assert proc.returncode == 0 and "1 submissions" in proc.stdout, proc.stdout


def test_harness_failure_prints_its_cause(course: Path) -> None:
    (course / "reference_tests" / "a9_tiny" / "hidden" / "test_broken.py").write_text(
        "import no_such_module_xyz\n\n\ndef test_x():\n    pass\n")
    proc = ag("grade", "a9", "solutions/a9_tiny", "-o", "r.json", cwd=course)
    assert proc.returncode == int(ExitCode.HARNESS_ERROR)
    assert "no_such_module_xyz" in proc.stdout, proc.stdout
    proc = ag("grade-all", "a9", "solutions/a9_tiny", "-o", "graded", cwd=course)
    assert "no_such_module_xyz" in proc.stdout, proc.stdout
    proc = ag("validate", "a9", cwd=course)
    assert proc.returncode == int(ExitCode.FAILED)
    assert proc.stdout.count("no_such_module_xyz") == 1, proc.stdout  # said once, not per row
    assert "not run: grading the solution failed" in proc.stdout


def test_check_outside_an_assignment_folder_says_so(course: Path) -> None:
    elsewhere = course / "elsewhere"
    elsewhere.mkdir()
    proc = ag("check", "a9", str(elsewhere), cwd=course)
    assert proc.returncode == int(ExitCode.USAGE), proc.stdout + proc.stderr
    assert "holds none of a9_tiny's files (ops.py" in proc.stdout


def test_output_limit_is_the_assignments(tmp_path: Path) -> None:
    """[limits] output_mb: past it the worker is stopped and the test says which limit."""
    by_name = grade_one_file_suite(
        tmp_path, "output_mb = 1\n",
        "def test_loud(student):\n    '''loud'''\n    student.module('m').shout(2_000_000)\n\n"
        "def test_quiet(student):\n    '''quiet'''\n    student.module('m').shout(1000)\n",
        "def shout(n):\n    print('x' * n)\n")
    assert by_name["quiet"]["status"] == "passed"
    assert by_name["loud"]["status"] == "failed"
    assert "printed more than 1 MB during m.shout" in by_name["loud"]["output"]
    assert "output_mb" in by_name["loud"]["output"]


def test_grade_all_stops_a_submission_past_its_timeout(course: Path, tmp_path: Path) -> None:
    """A grading that runs too long is stopped; it still gets a results.json (0 points)."""
    slow = tmp_path / "slow"
    shutil.copytree(course / "solutions" / "a9_tiny", slow)
    (slow / "ops.py").write_text((slow / "ops.py").read_text() + "\nimport time\n\ntime.sleep(8)\n")
    proc = ag("grade-all", "a9", f"slow={slow}", "-o", str(tmp_path / "g"), "--timeout", "2",
              cwd=course)
    assert "grading took longer than 2 s and was stopped" in proc.stdout, proc.stdout
    data = json.loads((tmp_path / "g" / "slow" / "results.json").read_text())
    results.validate(data)
    assert data["score"] == 0


def test_a_grading_stopped_while_starting_still_leaves_results(course: Path, tmp_path: Path) -> None:
    """Stopped before `grade` could install its SIGTERM handler: bulk writes the file."""
    from autograder.course.bulk import grade_in_subprocess

    out = tmp_path / "r.json"
    g = grade_in_subprocess("a9", course / "solutions" / "a9_tiny", out, timeout=0.01,
                            course=course)
    assert g.error == "grading took longer than 0.01 s and was stopped"
    data = json.loads(out.read_text())
    results.validate(data)
    assert data["score"] == 0


@pytest.mark.parametrize("breakage", ["bad limit", "no hidden tests"])
def test_broken_course_files_are_a_harness_error_not_bad_usage(course: Path, breakage: str) -> None:
    """The staff's files are wrong: exit 2 (as a harness error), results.json written, and
    the message names what to fix."""
    ref = course / "reference_tests" / "a9_tiny"
    if breakage == "bad limit":
        toml = ref / "assignment.toml"
        toml.write_text(toml.read_text().replace("call_timeout = 10", "call_timeout = -5"))
        needle = "call_timeout = -5"
    else:
        shutil.rmtree(ref / "hidden")  # a copy of the course that lost its hidden tests
        needle = "holds no hidden tests"
    proc = ag("grade", "a9", "solutions/a9_tiny", "-o", "r.json", cwd=course)
    assert proc.returncode == int(ExitCode.HARNESS_ERROR), proc.stdout + proc.stderr
    assert needle in proc.stdout
    data = json.loads((course / "r.json").read_text())
    results.validate(data)
    assert data["score"] == 0 and data["extra_data"]["harness_error"] is True


def test_hidden_tests_without_a_marker_are_not_visible(course: Path) -> None:
    """A forgotten visibility marker must not show a hidden test before publication:
    [visibility] default applies to public/, hidden (after_published) to the rest."""
    toml = course / "reference_tests" / "a9_tiny" / "assignment.toml"
    toml.write_text(toml.read_text().replace('default = "after_published"', 'default = "visible"'))
    proc = ag("grade", "a9", "solutions/a9_tiny", "-o", "r.json", cwd=course)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tests = json.loads((course / "r.json").read_text())["tests"]
    seen = {t["name"]: t["visibility"] for t in tests}
    assert seen == {"relu keeps positive values": "visible",  # public/test_ops.py
                    "relu zeroes negative values (hidden)": "after_published"}, tests


def test_check_table_uses_the_assignments_categories(course: Path) -> None:
    """[report] categories of assignment.toml name the check table's categories (the first
    tag listed there wins; a tag not listed there is no category)."""
    folder = course / "assignments" / "a9_tiny"
    with (folder / "assignment.toml").open("a") as f:
        f.write('\n[report]\ncategories = ["basics"]\n')
    (folder / "tests" / "test_tagged.py").write_text(
        "import pytest\n\n\n"
        "@pytest.mark.tags('gradients', 'basics')\n"
        "def test_basics():\n    '''tagged basics'''\n\n\n"
        "@pytest.mark.tags('gradients')\n"
        "def test_gradients():\n    '''tagged gradients'''\n")
    proc = ag("check", "a9", cwd=folder)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the template's relu fails
    cells = [[c.strip() for c in line.split("│")[1:3]] for line in proc.stdout.splitlines()
             if "tagged" in line]
    assert cells == [["basics", "tagged basics"], ["other", "tagged gradients"]], proc.stdout


def test_the_worker_saves_scratch_files_in_its_tmpdir_and_home(tmp_path: Path) -> None:
    """A checkpoint saved to $TMPDIR or ~ works (a private, bounded /tmp under the mount
    namespace); the submission's own folder stays read-only, as documented."""
    module = (
        "import os, tempfile\n"
        "def save():\n"
        "    out = []\n"
        "    for folder in (tempfile.gettempdir(), os.path.expanduser('~')):\n"
        "        path = os.path.join(folder, 'model.pt')\n"
        "        with open(path, 'wb') as f:\n"
        "            f.write(b'weights')\n"
        "        out.append(open(path, 'rb').read())\n"
        "    return out\n"
        "def save_here():\n"
        "    open('model.pt', 'wb').write(b'x')\n")
    tests = (
        "def test_scratch(student):\n"
        "    '''scratch'''\n"
        "    assert student.module('m').save() == [b'weights', b'weights']\n"
        "def test_here(student):\n"
        "    '''here'''\n"
        "    student.module('m').save_here()\n")
    out = grade_one_file_suite(tmp_path, "", tests, module)
    assert out["scratch"]["status"] == "passed", out["scratch"]["output"]
    if os.geteuid() == 0:  # the mount namespace makes the folder read-only
        assert "Read-only file system" in out["here"]["output"]


def test_validate_judges_a_mutant_by_the_tests_that_lose_it_points(course: Path) -> None:
    """A 0-point test does not stop a mutant's grading or catch it; a test that keeps
    passing with less partial credit does catch it."""
    hidden = course / "reference_tests" / "a9_tiny" / "hidden"
    (hidden / "test_aa_info.py").write_text(
        "import numpy as np\nimport pytest\n\n\n"
        "@pytest.mark.points(0)\n"
        "def test_mean_info(student):\n"
        "    '''mean (informational, no points)'''\n"
        "    assert student.module('stats').mean(np.array([1.0, 3.0])) == 2.0\n\n\n"
        "@pytest.mark.points(2)\n"
        "def test_mean_partial(student, partial_credit):\n"
        "    '''mean with partial credit'''\n"
        "    if student.module('stats').mean(np.array([1.0, 3.0])) != 2.0:\n"
        "        partial_credit(0.5)\n")
    proc = ag("validate", "a9", cwd=course)
    line = next(ln for ln in proc.stdout.splitlines() if "mean-off-by-one" in ln)
    assert "yes" in line and "caught by 'mean with partial credit'" in proc.stdout, proc.stdout
    assert "all checks hold" in proc.stdout, proc.stdout


_LOAD_SENSITIVE = '''

def _neighbour_spinning():
    import os
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"while os.getppid() ==" in f.read():
                    return True
        except OSError:
            pass
    return False


@pytest.mark.tags("performance")
def test_fast_enough(student):
    """passes only on a quiet machine (a band set too close to the code it judges)"""
    assert not _neighbour_spinning()
'''


def test_validate_fails_a_performance_verdict_that_flips_under_load(course: Path) -> None:
    """validate grades the solution and each slow variant again beside a busy neighbour;
    a performance test whose verdict changes then fails validation, by name."""
    hidden = course / "reference_tests" / "a9_tiny" / "hidden" / "test_hidden.py"
    hidden.write_text("import pytest\n" + hidden.read_text() + _LOAD_SENSITIVE)
    variants = course / "solutions" / "a9_tiny" / "variants.toml"
    variants.write_text(variants.read_text() + """
[[variant]]
name = "relu_loop"
description = "relu in a Python loop: correct, slow"
slow = true
file = "ops.py"
find = "return np.maximum(x, 0)"
replace = "return np.array([v if v > 0 else 0.0 for v in np.ravel(x)]).reshape(np.shape(x))"
""")
    proc = ag("validate", "a9", cwd=course)
    lines = proc.stdout.splitlines()
    assert any("solution (busy neighbour)" in ln and "NO" in ln for ln in lines), proc.stdout
    assert any("variant relu_loop (busy neighbour)" in ln for ln in lines), proc.stdout
    assert "verdict flips under load" in proc.stdout and "passes only on a quiet" in proc.stdout
    assert proc.returncode == 1


def test_validate_keeps_steady_performance_verdicts(course: Path) -> None:
    hidden = course / "reference_tests" / "a9_tiny" / "hidden" / "test_hidden.py"
    hidden.write_text("import pytest\n" + hidden.read_text() + '''

@pytest.mark.tags("performance")
def test_relu_is_quick(student):
    """relu of a small array (performance, a wide band)"""
    import numpy as np
    ops = student.module("ops")
    assert np.array_equal(ops.relu(np.array([2.0])), [2.0])
''')
    proc = ag("validate", "a9", cwd=course)
    lines = proc.stdout.splitlines()
    assert any("solution (busy neighbour)" in ln and "yes" in ln for ln in lines), proc.stdout
    assert "same verdicts under load" in proc.stdout


@pytest.mark.parametrize("extra", [["--require", "namespaces"], ["--isolation", "none"],
                                   ["--first-failure"], ["--test-workers", "2"],
                                   ["--quickest-first", "r.json"],
                                   ["--cpus", "0"]])
def test_grade_refuses_options_an_image_cannot_honour(course: Path, extra: list[str]) -> None:
    """--image grades with the image's own run_autograder: an option it would drop is a
    usage error (exit 3), never silently ignored."""
    proc = ag("grade", "a9", str(course / "solutions" / "a9_tiny"), "-o", str(course / "r.json"),
              "--image", "dl-autograder-a9:cpu", *extra, cwd=course)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    out = proc.stdout + proc.stderr
    assert "cannot be used with --image" in out or "must be positive" in out, out
