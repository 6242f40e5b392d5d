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
from datetime import UTC, datetime, timedelta
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


def _earlier(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """Every earlier submission (entries at or after this one's time are a regrade's and
    left out), oldest first; entries without a usable time sort first."""
    prev = meta.get("previous_submissions")
    prev = [p for p in prev if isinstance(p, dict)] if isinstance(prev, list) else []
    now = _time(meta.get("created_at"))
    epoch = datetime.min.replace(tzinfo=UTC)
    keyed = [(_time(p.get("submission_time")) or epoch, p) for p in prev]
    if now is not None:
        keyed = [(t, p) for t, p in keyed if t < now]
    return [p for _, p in sorted(keyed, key=lambda item: item[0])]


def _score(entry: dict[str, Any]) -> float | None:
    score = entry.get("score")
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
        return None
    return float(score)


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
    previous = _earlier(meta)
    if policy.submission_limit and len(previous) >= policy.submission_limit:
        kept = previous[policy.submission_limit - 1]
        kept_score = _score(kept)
        notes.append(f"This is submission {len(previous) + 1}; the limit is "
                     f"{policy.submission_limit}. The score of submission "
                     f"{policy.submission_limit} ({kept.get('submission_time')}) stays; this "
                     "one was graded for your information only.")
        staff["over_limit"] = True
        score = kept_score if kept_score is not None else 0.0
    else:
        penalty = _late_penalty(meta, policy, notes, staff)
        score = round(score * (1.0 - penalty), 6)
    scored = [(s, p) for p in previous if (s := _score(p)) is not None]
    if policy.best_of and scored:
        best_score, best = max(scored, key=lambda item: item[0])
        if best_score > score:
            notes.append(f"Your best earlier submission ({best.get('submission_time')}) scored "
                         "more than this one; the best score counts.")
            staff["best_of"] = best.get("submission_time")
            score = best_score
    out["score"] = score
    staff["final_score"] = score
    return _finish(out, notes, staff)


def _late_penalty(meta: dict[str, Any], policy: Policy, notes: list[str],
                  staff: dict[str, Any]) -> float:
    if not policy.late_penalty_per_day:
        return 0.0
    created = _time(meta.get("created_at"))
    assignment = meta.get("assignment")
    due = _time(assignment.get("due_date")) if isinstance(assignment, dict) else None
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
