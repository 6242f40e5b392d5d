"""grade-all's outputs for people and its journal, on the tiny course: grades.csv,
report.html (also rendered in Chromium), similarity flags, reruns that skip unchanged
submissions, and a run killed with SIGKILL that loses nothing finished."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from course_cli import ag

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

# Own code beyond the template: enough tokens for the similarity check to judge.
EXTRA = '''

def _normalize(values, low, high):
    span = high - low
    if span == 0:
        return values * 0
    scaled = (values - low) / span
    clipped = scaled.clip(0, 1)
    return clipped * 2 - 1
'''
RENAMED = EXTRA.replace("values", "v").replace("span", "width").replace("scaled", "s")


def _student(base: Path, name: str, course: Path, extra: str = "") -> Path:
    sub = base / name
    shutil.copytree(course / "solutions" / "a9_tiny", sub,
                    ignore=shutil.ignore_patterns("*.toml", "README.md", "__pycache__"))
    (sub / "ops.py").write_text((sub / "ops.py").read_text() + extra)
    return sub


@pytest.fixture
def batch(course: Path, tmp_path: Path) -> Path:
    subs = tmp_path / "subs"
    _student(subs, "alice", course, EXTRA)
    _student(subs, "alice_copy", course, RENAMED)
    _student(subs, "=HYPERLINK(1)", course)  # a name that a spreadsheet would run
    shutil.copytree(course / "assignments" / "a9_tiny", subs / "tmpl")
    return subs


def test_grades_csv_and_report(course: Path, batch: Path, tmp_path: Path) -> None:
    out = tmp_path / "graded"
    proc = ag("grade-all", "a9", str(batch), "-o", str(out), cwd=course)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = list(csv.reader((out / "grades.csv").open()))
    header, body = rows[0], {r[0]: r for r in rows[1:]}
    assert header[:8] == ["student", "email", "sid", "submission", "total", "max", "status",
                          "seconds"]
    tests = header[8:]
    assert len(tests) == 2 and all(tests)
    assert body["alice"][3:7] == ["alice", "2", "2", "graded"]
    assert body["tmpl"][4:7] == ["0", "2", "graded"]
    assert body["tmpl"][8:] == ["0", "0"]
    assert "'=HYPERLINK(1)" in body  # escaped, never a formula
    page = (out / "report.html").read_text()
    assert page.count("<svg") == 2 and "&#39;=HYPERLINK(1)" not in page
    assert "=HYPERLINK(1)" in page
    figures = json.loads(_between(page, '<script type="application/json" id="figure-data">',
                                  "</script>"))  # as JSON.parse reads it
    assert sorted(figures["histogram"]) == [0.0, 2.0, 2.0, 2.0]
    assert set(figures["pass_rates"].values()) == {0.75}
    # the renamed copy is flagged, in the report and the table of flags
    similar = _between(page, '<table id="similar">', "</table>")
    assert "alice" in similar and "alice_copy" in similar
    assert "=HYPERLINK" not in similar and "tmpl" not in similar


def _between(text: str, start: str, end: str) -> str:
    i = text.index(start) + len(start)
    return text[i:text.index(end, i)]


def test_rerun_reuses_unchanged_and_keeps_what_it_replaces(course: Path, batch: Path,
                                                           tmp_path: Path) -> None:
    out = tmp_path / "graded"
    assert ag("grade-all", "a9", str(batch), "-o", str(out), cwd=course).returncode == 0
    first = (out / "alice" / "results.json").read_text()
    ops = batch / "tmpl" / "ops.py"
    ops.write_text((course / "solutions" / "a9_tiny" / "ops.py").read_text())  # tmpl fixed
    proc = ag("grade-all", "a9", str(batch), "-o", str(out), cwd=course)
    assert proc.returncode == 0, proc.stdout
    assert "3 unchanged since the last run" in proc.stdout
    assert (out / "alice" / "results.json").read_text() == first  # reused, not rewritten
    assert (out / "tmpl" / "results.previous.json").is_file()  # the replaced one is kept
    body = {r[0]: r for r in csv.reader((out / "grades.csv").open())}
    assert body["alice"][6] == "reused" and body["tmpl"][4:7] == ["2", "2", "graded"]
    # a changed hidden suite, or --regrade, grades everything again
    proc = ag("grade-all", "a9", str(batch), "-o", str(out), "--regrade", cwd=course)
    assert "unchanged since the last run" not in proc.stdout
    # a folder of an earlier batch is kept and named
    shutil.rmtree(batch / "alice_copy")
    proc = ag("grade-all", "a9", str(batch), "-o", str(out), cwd=course)
    assert "not in this batch are kept" in proc.stdout and "alice_copy" in proc.stdout


def test_a_run_killed_with_sigkill_loses_nothing_finished(course: Path, batch: Path,
                                                          tmp_path: Path) -> None:
    slow = batch / "slow"
    shutil.copytree(batch / "alice", slow)
    good_ops = (slow / "ops.py").read_text()
    (slow / "ops.py").write_text(good_ops + "\nimport time\ntime.sleep(120)\n")  # in flight
    out = tmp_path / "graded"
    cmd = [sys.executable, "-m", "autograder", "grade-all", "a9", str(batch), "-o", str(out),
           "-j", "5"]
    proc = subprocess.Popen(cmd, cwd=course, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = out / "journal.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if journal.is_file() and len(journal.read_text().splitlines()) >= 4:
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    lines = journal.read_text().splitlines()
    assert len(lines) == 4, lines  # every one but the slow one
    (slow / "ops.py").write_text(good_ops)
    again = ag("grade-all", "a9", str(batch), "-o", str(out), cwd=course)
    assert again.returncode == 0, again.stdout
    assert "4 unchanged since the last run" in again.stdout
    body = {r[0]: r for r in csv.reader((out / "grades.csv").open())}
    assert body["slow"][6] == "graded" and body["slow"][4] == "2"


METADATA = """\
submission_1001:
  :submitters:
  - :name: Ada Lovelace
    :sid: '0042'
    :email: ada@example.edu
  :created_at: 2026-11-30 10:00:00.000000000 -08:00
  :score: 0.0
submission_1002:
  :submitters:
  - :name: Alan Turing
    :sid: '0043'
    :email: alan@example.edu
  - :name: "=Grace Hopper"
    :sid: '0044'
    :email: grace@example.edu
"""


def test_a_gradescope_export_zip_names_every_row(course: Path, tmp_path: Path) -> None:
    """Gradescope's "Export Submissions" zip: names, emails and sids lead each row (a group
    submission lists every submitter); a corrupt zip beside it is a row of its own."""
    export = tmp_path / "assignment_77_export"
    _student(export, "submission_1001", course)
    shutil.copytree(course / "assignments" / "a9_tiny", export / "submission_1002")
    (export / "submission_metadata.yml").write_text(METADATA)
    archive = Path(shutil.make_archive(str(tmp_path / "export"), "zip", tmp_path,
                                       "assignment_77_export"))
    corrupt = tmp_path / "late.zip"
    corrupt.write_bytes(b"PK\x03\x04 truncated")
    out = tmp_path / "graded"
    proc = ag("grade-all", "a9", str(archive), f"late={corrupt}", "-o", str(out), cwd=course)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = list(csv.reader((out / "grades.csv").open()))
    body = {r[3]: r for r in rows[1:]}
    assert body["submission_1001"][:7] == ["Ada Lovelace", "ada@example.edu", "0042",
                                           "submission_1001", "2", "2", "graded"]
    assert body["submission_1002"][:5] == ["Alan Turing; =Grace Hopper",
                                           "alan@example.edu; grace@example.edu", "0043; 0044",
                                           "submission_1002", "0"]
    assert body["late"][6] == "not graded"
    assert "Alan Turing; =Grace Hopper" in (out / "report.html").read_text()
    assert not list(Path(tempfile.gettempdir()).glob("autograder-export-*")), "left behind"


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (.ci/run installs it)")
def test_report_renders_in_chromium(course: Path, batch: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    out = tmp_path / "graded"
    assert ag("grade-all", "a9", str(batch), "-o", str(out), cwd=course).returncode == 0
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page()
            page.goto((out / "report.html").as_uri())
            # the figures are drawn: one bar per histogram bin, one per test, with a size
            hist = page.locator("#score-histogram svg g[id^=hist-bar-]")
            rates = page.locator("#pass-rates svg g[id^=pass-bar-]")
            assert rates.count() == 2
            assert hist.count() >= 2
            boxes = [rates.nth(i).bounding_box() for i in range(rates.count())]
            assert all(b is not None and b["width"] > 10 and b["height"] > 2 for b in boxes)
            assert page.locator("#score-histogram svg").bounding_box()["width"] > 300
            assert "4 graded" in page.locator("#summary").inner_text()
            assert page.locator("#similar tr").count() == 2  # header + alice/alice_copy
        finally:
            browser.close()


def _in_a_terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as its stdout, as a TA at a shell does."""
    import pty

    primary, secondary = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "autograder", *args], cwd=cwd,
                            stdout=secondary, stderr=secondary, stdin=subprocess.DEVNULL,
                            env={**os.environ, "COLUMNS": "120"})
    os.close(secondary)
    chunks = []
    while True:
        try:
            data = os.read(primary, 65536)
        except OSError:  # EIO: every writer is gone
            break
        if not data:
            break
        chunks.append(data)
    os.close(primary)
    return proc.wait(timeout=300), b"".join(chunks).decode("utf-8", "replace")


def test_progress_with_eta_on_a_terminal_only(course: Path, batch: Path, tmp_path: Path) -> None:
    code, shown = _in_a_terminal(["grade-all", "a9", str(batch), "-o", str(tmp_path / "g")],
                                 course)
    assert code == 0, shown
    assert "grading" in shown and "ETA" in shown and "/4" in shown, shown
    code, shown = _in_a_terminal(["validate", "a9"], course)
    assert "validating" in shown and "ETA" in shown, shown
    piped = ag("grade-all", "a9", str(batch), "-o", str(tmp_path / "g2"), cwd=course)
    assert piped.returncode == 0 and "ETA" not in piped.stdout + piped.stderr


def _comparable(out: Path) -> list[list[str]]:
    rows = list(csv.reader((out / "grades.csv").open()))
    return sorted([r[:7] + r[8:] for r in rows[1:]])  # all but the seconds column


def test_dask_local_cluster_gives_the_same_outputs(course: Path, batch: Path,
                                                   tmp_path: Path) -> None:
    local = ag("grade-all", "a9", str(batch), "-o", str(tmp_path / "pool"), "-j", "2",
               cwd=course)
    assert local.returncode == 0, local.stdout + local.stderr
    dask = ag("grade-all", "a9", str(batch), "-o", str(tmp_path / "dask"), "-j", "2",
              "--dask", "local", cwd=course)
    assert dask.returncode == 0, dask.stdout + dask.stderr
    assert _comparable(tmp_path / "dask") == _comparable(tmp_path / "pool")
    for name in ("alice", "tmpl"):
        a, b = (json.loads((tmp_path / d / name / "results.json").read_text())
                for d in ("pool", "dask"))
        assert [(t["name"], t["score"], t["status"]) for t in a["tests"]] == \
               [(t["name"], t["score"], t["status"]) for t in b["tests"]]


def test_a_node_that_writes_no_results_is_a_clear_row(course: Path, batch: Path,
                                                      tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker or node that returns without a results.json (or with a broken one): a
    harness-error row with every expected test at 0, never a lost or silent grade."""
    from autograder.course import bulk

    def lost(assignment: str, path: Path, out: Path, **kw: object) -> bulk.Graded:
        if path.name == "alice":
            out.write_text("{not json")
        return bulk.Graded(path.name, path, out)

    monkeypatch.setattr(bulk, "grade_in_subprocess", lost)
    graded = bulk.grade_all(assignment="a9", targets=[("alice", batch / "alice"),
                                                      ("tmpl", batch / "tmpl")],
                            out_dir=tmp_path / "g", course=course)
    by_name = {g.name: g for g in graded}
    assert by_name["alice"].status == by_name["tmpl"].status == "harness error"
    assert "results.json of alice is unreadable" in by_name["alice"].error
    assert "results.json of tmpl is missing" in by_name["tmpl"].error
    data = json.loads((tmp_path / "g" / "tmpl" / "results.json").read_text())
    assert data["score"] == 0 and len([t for t in data["tests"] if t["max_score"]]) == 2


def test_a_students_own_metadata_file_names_nobody(course: Path, batch: Path,
                                                   tmp_path: Path) -> None:
    """A zip (or folder) holding the assignment's files is one submission, whatever else it
    holds: a forged submission_metadata.yml with made-up folders adds no rows."""
    carol = tmp_path / "carol_src"
    _student(carol.parent, carol.name, course)
    shutil.copytree(course / "solutions" / "a9_tiny", carol / "submission_1")
    (carol / "submission_metadata.yml").write_text(
        "submission_1:\n  :submitters:\n  - :name: Somebody Else\n    :sid: '9'\n")
    archive = Path(shutil.make_archive(str(tmp_path / "carol"), "zip", carol))
    out = tmp_path / "graded"
    proc = ag("grade-all", "a9", str(archive), str(carol), "-o", str(out), cwd=course)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = list(csv.reader((out / "grades.csv").open()))[1:]
    assert sorted(r[3] for r in rows) == ["carol", "carol_src"], rows
    assert all("Somebody Else" not in ",".join(r) for r in rows)


def test_metadata_with_yaml_aliases_is_refused(tmp_path: Path) -> None:
    from autograder.course.exports import read_export
    from autograder.errors import ConfigError

    (tmp_path / "submission_metadata.yml").write_text(
        "a: &a ['x','x','x','x','x','x','x','x','x']\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
        "submission_1:\n  :submitters:\n  - :name: [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n")
    with pytest.raises(ConfigError, match="aliases are not allowed"):
        read_export(tmp_path)


def test_names_that_cannot_be_an_output_folder_are_rows_not_crashes(course: Path,
                                                                    tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    subs.mkdir()
    good = course / "solutions" / "a9_tiny"
    for name in ("ok.zip", "journal.jsonl.zip"):
        shutil.make_archive(str(subs / name.removesuffix(".zip")), "zip", good)
    out = tmp_path / "graded"
    proc = ag("grade-all", "a9", str(subs), f"..={good}", "-o", str(out), cwd=course)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    body = {r[3]: r for r in list(csv.reader((out / "grades.csv").open()))[1:]}
    assert body["ok"][6] == "graded"
    assert body["journal.jsonl"][6] == body[".."][6] == "name collision"
    assert (out / "journal.jsonl").is_file() and not (tmp_path / "results.json").exists()


def test_in_process_gradings_are_never_reused(course: Path, batch: Path, tmp_path: Path) -> None:
    """--isolation none runs student code in the grader, which it can forge: a later
    sandboxed run grades again."""
    out = tmp_path / "graded"
    assert ag("grade-all", "a9", str(batch), "-o", str(out), "--isolation", "none",
              cwd=course).returncode == 0
    proc = ag("grade-all", "a9", str(batch), "-o", str(out), cwd=course)
    assert proc.returncode == 0 and "unchanged since the last run" not in proc.stdout
    again = ag("grade-all", "a9", str(batch), "-o", str(out), "--timeout", "999", cwd=course)
    assert "unchanged since the last run" not in again.stdout  # other settings: graded again


def test_pass_rate_chart_takes_dollar_signs_literally() -> None:
    from autograder.course.report import _pass_rate_chart

    svg = _pass_rate_chart([("grad of $x_i_j$ costs $5", 0.5, 2), ("plain", 1.0, 2)])
    assert svg.startswith("<svg")


def test_a_dask_worker_killed_mid_grading_loses_no_grade(course: Path, batch: Path,
                                                         tmp_path: Path) -> None:
    """Kill the Dask worker process while it grades: the batch still ends with a valid
    results.json and a row for that submission (Dask retries the task on a new worker;
    past its retries the row is a harness error), never a lost or silent grade."""
    import threading

    import psutil

    from autograder.course import bulk

    slow = batch / "slow"
    shutil.copytree(batch / "alice", slow)
    ops = slow / "ops.py"
    ops.write_text(ops.read_text() + "\nimport time\ntime.sleep(4)\n")
    out = tmp_path / "graded"
    done: dict[str, list[bulk.Graded]] = {}
    runner = threading.Thread(target=lambda: done.setdefault("g", bulk.grade_all(
        assignment="a9", targets=[("slow", slow)], out_dir=out, course=course, dask="local",
        jobs=1)))
    runner.start()
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and time.monotonic() < deadline:
        for proc in psutil.process_iter(["cmdline"]):
            cmd = " ".join(proc.info["cmdline"] or [])
            if "autograder grade a9" in cmd and str(slow) in cmd:
                killed = proc.parent()  # the Dask worker that runs this grading
                killed.kill()
                break
        time.sleep(0.1)
    runner.join(300)
    assert killed is not None, "the grading never started"
    assert not runner.is_alive() and "g" in done
    [g] = done["g"]
    assert g.status in ("graded", "harness error"), g
    data = json.loads((out / "slow" / "results.json").read_text())
    assert data["tests"] and (g.status == "harness error") == bool(
        data["extra_data"].get("harness_error"))
