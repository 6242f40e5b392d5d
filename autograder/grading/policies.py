"""Course policies applied with Gradescope's submission_metadata.json (`grade --metadata`).

An assignment enables them in its assignment.toml::

    [policy]
    late_penalty_per_day = 0.1   # fraction of the score lost per started day after due_date
    late_grace_minutes = 5       # submissions this late still count as on time
    submission_limit = 10        # later submissions keep the score of the last one allowed
    best_of = true               # the best score of all submissions counts

The tests keep what they earned; the policy sets the top-level ``score`` (which Gradescope
takes over the sum of the tests) and says in the top-level ``output`` what it did, without
any total that would reveal hidden tests' results. What it did goes to ``extra_data``
for staff. Metadata that cannot be read leaves the score as graded, with a note: a
grade is never lost to a policy.

Gradescope's format (https://gradescope-autograders.readthedocs.io, "Submission Metadata"):
``created_at``, ``assignment.due_date``, ``previous_submissions[].{submission_time, score,
results}``. Its own recipe for rate limits: keep the results of the last valid submission
and tell the student why.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from autograder.config import Policy


def read_metadata(path: Path) -> tuple[dict[str, Any] | None, str]:
    """Gradescope's metadata, or None and why it cannot be used."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return None, f"{path} could not be read ({exc})"
    if not isinstance(data, dict):
        return None, f"{path} is not a JSON object"
    return data, ""


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo is not None else None  # naive times cannot be compared safely


def _previous(meta: dict[str, Any]) -> list[dict[str, Any]]:
    prev = meta.get("previous_submissions") or []
    usable = [p for p in prev if isinstance(p, dict) and _time(p.get("submission_time"))
              and isinstance(p.get("score"), (int, float)) and not isinstance(p.get("score"), bool)
              and math.isfinite(p["score"])]
    return sorted(usable, key=lambda p: _time(p["submission_time"]))  # type: ignore[arg-type, return-value]


def apply(data: dict[str, Any], meta: dict[str, Any] | None, policy: Policy, *,
          problem: str = "") -> dict[str, Any]:
    """``data`` (a results.json) with the policies applied; a new dict."""
    if not policy.any:
        return data
    out = dict(data)
    notes: list[str] = []
    staff: dict[str, Any] = {}
    if meta is None:
        notes.append("Course policies (late penalty, submission limit, best score) were not "
                     "applied: the submission's metadata is missing. Staff have been told.")
        staff["not_applied"] = problem or "no submission metadata"
        return _finish(out, notes, staff)
    score = float(out["score"])
    staff["graded_score"] = score
    previous = _previous(meta)
    if policy.submission_limit and len(previous) >= policy.submission_limit:
        kept = previous[policy.submission_limit - 1]
        notes.append(f"This is submission {len(previous) + 1}; the limit is "
                     f"{policy.submission_limit}. The score of submission "
                     f"{policy.submission_limit} ({kept['submission_time']}) stays; this one "
                     "was graded for your information only.")
        staff["over_limit"] = True
        score = float(kept["score"])
    else:
        penalty = _late_penalty(meta, policy, notes, staff)
        score = round(score * (1.0 - penalty), 6)
    if policy.best_of and previous:
        best = max(previous, key=lambda p: float(p["score"]))
        if float(best["score"]) > score:
            notes.append(f"Your best earlier submission ({best['submission_time']}) scored "
                         "more than this one; the best score counts.")
            staff["best_of"] = best["submission_time"]
            score = float(best["score"])
    out["score"] = score
    staff["final_score"] = score
    return _finish(out, notes, staff)


def _late_penalty(meta: dict[str, Any], policy: Policy, notes: list[str],
                  staff: dict[str, Any]) -> float:
    if not policy.late_penalty_per_day:
        return 0.0
    created = _time(meta.get("created_at"))
    due = _time((meta.get("assignment") or {}).get("due_date"))
    if created is None or due is None:
        notes.append("The late penalty was not applied: the submission time or due date is "
                     "missing. Staff have been told.")
        staff["late_not_applied"] = "created_at or assignment.due_date missing or not ISO 8601"
        return 0.0
    late = created - due - timedelta(minutes=policy.late_grace_minutes)
    if late <= timedelta(0):
        return 0.0
    days = math.ceil(late / timedelta(days=1))
    penalty = min(1.0, days * policy.late_penalty_per_day)
    hours = (created - due) / timedelta(hours=1)
    notes.append(f"Submitted {hours:.1f} hours after the due date: {days} day(s) late, "
                 f"{penalty:.0%} of the score is taken off "
                 f"({policy.late_penalty_per_day:.0%} per started day).")
    staff.update(late_days=days, late_penalty=penalty)
    return penalty


def _finish(out: dict[str, Any], notes: list[str], staff: dict[str, Any]) -> dict[str, Any]:
    if notes:
        out["output"] = "\n".join(notes) + ("\n\n" + out["output"] if out.get("output") else "")
    out["extra_data"] = dict(out.get("extra_data") or {}, policy=staff)
    return out
