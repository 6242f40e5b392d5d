"""results.json assembly: schema validity, scores, unavailable tests, truncation, atomic write."""

from __future__ import annotations

import json
import os
import stat

import jsonschema
import pytest

from autograder.grading import results
from autograder.grading.results import MAX_TEST_OUTPUT, build, fail_closed, truncate, write
from autograder.grading.results import TestRecord as Record


def rec(i: int, *, outcome: str = "passed", points: float = 1.0, score: float | None = None,
        **kw) -> Record:
    r = Record(nodeid=f"test_x.py::test_{i}", name=f"Test {i}", max_score=points,
                   visibility=kw.pop("visibility", "visible"), outcome=outcome, **kw)
    r.score = (points if outcome == "passed" else 0.0) if score is None else score
    return r


def strict_json(text: str):
    def refuse(const):
        raise ValueError(f"non-standard JSON constant {const}")

    return json.loads(text, parse_constant=refuse)


def validator():
    schema = results.schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def assert_valid(data):
    errors = sorted(validator().iter_errors(data), key=str)
    assert not errors, [e.message for e in errors]


def simple(records, **kw):
    args = dict(execution_time=1.25, output="Files graded: calc.py", extra_data={"k": 1},
                leaderboard=[])
    args.update(kw)
    return build(records, **args)


# ------------------------------------------------------------------------- build

def test_schema_is_a_valid_draft_2020_12_schema():
    validator()


def test_build_is_schema_valid_and_sums_scores():
    records = [rec(1, points=2), rec(2, outcome="failed", points=3), rec(3, points=0.5),
               rec(4, points=4, score=1.5, partial=0.375)]
    data = simple(records)
    assert_valid(data)
    results.validate(data)
    assert data["score"] == pytest.approx(2 + 0 + 0.5 + 1.5)
    assert data["score"] == pytest.approx(sum(t["score"] for t in data["tests"]))
    assert [t["max_score"] for t in data["tests"]] == [2, 3, 0.5, 4]
    assert [t["status"] for t in data["tests"]] == ["passed", "failed", "passed", "passed"]
    assert [t["number"] for t in data["tests"]] == ["1", "2", "3", "4"]
    assert data["execution_time"] == 1.25 and data["output"] == "Files graded: calc.py"
    assert data["extra_data"] == {"k": 1}
    assert "leaderboard" not in data


def test_test_entries_carry_the_record_fields():
    r = rec(1, visibility="after_published", tags=["gradients", "x"], output="some output")
    (t,) = simple([r])["tests"]
    assert t == {"score": 1.0, "max_score": 1.0, "status": "passed", "name": "Test 1",
                 "number": "1", "tags": ["gradients", "x"], "visibility": "after_published",
                 "output": "some output", "output_format": "text"}


@pytest.mark.parametrize("outcome", ["failed", "not run"])
def test_tests_that_did_not_pass_are_failed(outcome):
    (t,) = simple([rec(1, outcome=outcome)])["tests"]
    assert t["status"] == "failed" and t["score"] == 0


def test_unavailable_tests_are_excluded_from_the_maximum():
    records = [rec(1, points=2), rec(2, outcome="unavailable", points=5, score=5.0,
                                     output="Not run: needs CUDA")]
    data = simple(records)
    assert_valid(data)
    gpu = data["tests"][1]
    assert gpu["max_score"] == 0 and gpu["score"] == 0 and gpu["status"] == "passed"
    assert gpu["output"] == "Not run: needs CUDA"
    assert data["score"] == 2
    assert sum(t["max_score"] for t in data["tests"]) == 2
    assert not records[1].counts and records[0].counts


def test_scores_are_rounded():
    data = simple([rec(1, points=1, score=1 / 3), rec(2, points=1, score=1 / 3)])
    assert data["tests"][0]["score"] == round(1 / 3, 6)
    assert data["score"] == pytest.approx(2 / 3, abs=1e-6)


def test_leaderboard_is_included_when_given():
    board = [{"name": "accuracy", "value": 0.97, "order": "desc"},
             {"name": "model", "value": "resnet"}]
    data = simple([rec(1)], leaderboard=board)
    assert_valid(data)
    assert data["leaderboard"] == board


def test_harness_error_entry_is_hidden_and_worth_nothing():
    data = simple([rec(1)], harness_error="Traceback: boom")
    assert_valid(data)
    staff = data["tests"][-1]
    assert staff["visibility"] == "hidden" and staff["max_score"] == 0 and staff["score"] == 0
    assert staff["status"] == "failed" and "boom" in staff["output"]
    assert staff["number"] == "2"


def test_empty_record_list_is_valid():
    data = simple([])
    assert_valid(data)
    assert data["score"] == 0 and data["tests"] == []


def test_negative_execution_time_is_clamped():
    assert simple([rec(1)], execution_time=-3)["execution_time"] == 0


def test_top_level_defaults_follow_gradescope():
    data = simple([rec(1)])
    assert data["visibility"] == "visible" and data["stdout_visibility"] == "hidden"
    assert data["output_format"] == "text"


# ------------------------------------------------------------------------- truncation

def test_truncate():
    assert truncate("abc", 3) == "abc"
    out = truncate("x" * 100, 10)
    assert out.startswith("x" * 10) and "90 more characters" in out
    assert truncate("", 0) == ""


def test_long_outputs_are_truncated():
    r = rec(1, output="y" * (MAX_TEST_OUTPUT * 3))
    data = simple([r], output="z" * 100_000, harness_error="e" * 200_000)
    assert_valid(data)
    assert len(data["tests"][0]["output"]) < MAX_TEST_OUTPUT + 100
    assert "truncated" in data["tests"][0]["output"]
    assert len(data["output"]) < 33 * 1024
    assert len(data["tests"][1]["output"]) < 65 * 1024


# ------------------------------------------------------------------------- fail closed

def test_fail_closed_zeroes_every_test_and_adds_a_staff_entry():
    records = [rec(1, points=2, output="passed before"), rec(2, outcome="failed"),
               rec(3, outcome="unavailable", points=4)]
    data = fail_closed(records, "Traceback (most recent call last): kaboom", execution_time=2.0,
                       extra_data={"assignment": "a1"})
    assert_valid(data)
    assert data["score"] == 0
    graded = data["tests"][:3]
    assert all(t["score"] == 0 for t in graded)
    assert [t["max_score"] for t in graded] == [2, 1, 0]  # the maximum stays visible
    assert [t["status"] for t in graded[:2]] == ["failed", "failed"]
    assert all("Not graded" in t["output"] for t in graded[:2])
    staff = data["tests"][3]
    assert staff["visibility"] == "hidden" and "kaboom" in staff["output"]
    assert "kaboom" not in data["output"] and "grader" in data["output"]
    assert data["extra_data"] == {"assignment": "a1", "harness_error": True}
    assert "leaderboard" not in data


def test_fail_closed_with_no_records():
    data = fail_closed([], "config broken", execution_time=0.0)
    assert_valid(data)
    assert data["score"] == 0 and len(data["tests"]) == 1
    assert data["extra_data"]["harness_error"] is True


# ------------------------------------------------------- not graded: the student's fault

def test_timed_out_tells_the_student_why_and_lists_every_test():
    """A submission stopped by grade-all --timeout: its results.json says the whole
    grading took longer than the limit and that the code may hang or be too slow."""
    records = [rec(1, points=2, staff_output="KeyboardInterrupt"), rec(2, outcome="failed"),
               rec(3, outcome="unavailable", points=4, output="Not run: no CUDA")]
    data = results.timed_out(records, limit=60, execution_time=61.5,
                             extra_data={"assignment": "a1", "harness_error": True})
    assert_valid(data)
    assert data["score"] == 0 and data["execution_time"] == 61.5
    assert "longer than the limit of 60 seconds for the whole submission" in data["output"]
    assert "hang" in data["output"] and "too slow" in data["output"]
    tests = data["tests"]
    assert [t["name"] for t in tests] == ["Test 1", "Test 2", "Test 3"]  # no harness entry
    assert [t["max_score"] for t in tests] == [2, 1, 0]
    assert [t["status"] for t in tests] == ["failed", "failed", "passed"]
    assert all("limit of 60 seconds" in t["output"] for t in tests[:2])
    assert tests[2]["output"] == "Not run: no CUDA"
    assert all("extra_data" not in t for t in tests)  # the SIGTERM traceback is gone
    # Not a harness error; the staff note (never shown to students) names --timeout.
    assert "harness_error" not in data["extra_data"]
    assert data["extra_data"]["assignment"] == "a1"
    assert "--timeout 60" in data["extra_data"]["staff_note"]
    assert "--timeout" not in data["output"] and "grader" not in data["output"]
    assert results.harness_cause(data) is None


def test_not_graded_gives_the_students_reason():
    data = results.not_graded([rec(1), rec(2, points=3)], output="carol.zip is not a zip file",
                              test_output="Not graded: see above", staff_note="bad zip",
                              execution_time=0.0)
    assert_valid(data)
    assert data["score"] == 0 and [t["max_score"] for t in data["tests"]] == [1, 3]
    assert data["output"] == "carol.zip is not a zip file"
    assert all(t["output"] == "Not graded: see above" for t in data["tests"])
    assert data["extra_data"] == {"staff_note": "bad zip"}


# ------------------------------------------------------------------------- write

def test_write_produces_valid_strict_json(tmp_path):
    data = simple([rec(1), rec(2, outcome="failed")])
    path = tmp_path / "out" / "deeper" / "results.json"
    write(data, path)
    loaded = strict_json(path.read_text())
    assert loaded == data
    assert_valid(loaded)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert os.listdir(path.parent) == ["results.json"]


def test_write_replaces_an_existing_file(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("old")
    write(simple([rec(1)]), path)
    assert strict_json(path.read_text())["score"] == 1


def test_write_refuses_invalid_data_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "results.json"
    path.write_text('{"old": true}')
    bad = simple([rec(1)])
    bad["tests"][0]["score"] = -1
    with pytest.raises(jsonschema.ValidationError):
        write(bad, path)
    missing = simple([rec(1)])
    del missing["tests"]
    with pytest.raises(jsonschema.ValidationError):
        write(missing, path)
    assert path.read_text() == '{"old": true}'
    assert os.listdir(tmp_path) == ["results.json"]


@pytest.mark.parametrize("mutate", [
    lambda d: d.update(visibility="public"),
    lambda d: d["tests"][0].update(status="error"),
    lambda d: d["tests"][0].update(name=""),
    lambda d: d["tests"][0].update(unknown=1),
    lambda d: d.update(leaderboard=[{"name": "x", "value": None}]),
    lambda d: d.update(leaderboard=[{"name": "x", "value": 1, "order": "up"}]),
], ids=["visibility", "status", "empty-name", "extra-key", "leaderboard-null", "leaderboard-order"])
def test_schema_rejects_malformed_results(mutate):
    data = simple([rec(1)])
    mutate(data)
    with pytest.raises(jsonschema.ValidationError):
        results.validate(data)


def test_failed_write_leaves_no_temp_file_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "results.json"
    path.write_text('{"old": true}')
    data = simple([rec(1)], extra_data={"not_json": {1, 2}})  # passes the schema, not json.dump
    with pytest.raises(Exception):  # noqa: B017 - any error, as long as nothing is left over
        write(data, path)
    assert path.read_text() == '{"old": true}'
    assert os.listdir(tmp_path) == ["results.json"]


def test_non_finite_numbers_never_reach_the_file(tmp_path):
    path = tmp_path / "results.json"
    data = simple([rec(1)], leaderboard=[{"name": "loss", "value": float("nan"), "order": "asc"}])
    try:
        write(data, path)
    except (ValueError, jsonschema.ValidationError):
        return  # refusing is fine too
    strict_json(path.read_text())


def test_failed_test_keeps_a_staff_only_traceback():
    failed = results.TestRecord(nodeid="t::a", name="a", max_score=1.0, visibility="visible",
                                outcome="failed", output="short", staff_output="Traceback ...")
    data = results.build([failed], execution_time=0.1, output="", extra_data={}, leaderboard=[])
    results.validate(data)
    (entry,) = data["tests"]
    assert entry["output"] == "short"
    assert entry["extra_data"] == {"staff_traceback": "Traceback ..."}
