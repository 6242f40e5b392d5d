"""grade-all's outputs for people: grades.csv (one row per submission, one column per test)
and report.html (charts and the lists a TA reads first), built from the results.json files.

The HTML is one self-contained file (figures are inline SVG drawn by matplotlib, no
scripts, nothing fetched), so it opens from a shared folder or an e-mail attachment.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder.course.exports import Submitters
from autograder.course.similarity import Pair
from autograder.errors import AutograderError
from autograder.grading import results as results_mod
from autograder.grading.notebooks import notebook_to_source

GRADES_CSV = "grades.csv"
REPORT_HTML = "report.html"
MAX_SOURCE_BYTES = 1 << 20  # per module, for the similarity check


@dataclass
class TestRow:
    name: str
    score: float
    max_score: float
    passed: bool
    duration: float | None
    output: str


@dataclass
class SubmissionRow:
    name: str  # as graded: OUT/NAME/results.json
    submission: str  # the path given
    status: str  # graded, reused, timed out, not graded, harness error, name collision
    score: float = 0.0
    max_score: float = 0.0
    seconds: float = 0.0
    note: str = ""
    tests: list[TestRow] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    graded_files: dict[str, str] = field(default_factory=dict)
    who: Submitters = field(default_factory=Submitters)


def read_row(name: str, submission: Path, status: str, results: Path | None,
             note: str = "") -> SubmissionRow:
    row = SubmissionRow(name, str(submission), status, note=note)
    try:
        data = json.loads(results.read_text()) if results else None
    except (OSError, ValueError):
        data = None
    if not isinstance(data, dict):
        return row
    row.score = float(data.get("score", 0))
    row.seconds = float(data.get("execution_time", 0))
    for t in data.get("tests", []):
        if results_mod.HARNESS_TAG in t.get("tags", []):
            continue
        extra = t.get("extra_data") or {}
        row.tests.append(TestRow(str(t["name"]), float(t["score"]), float(t["max_score"]),
                                 t.get("status") == "passed", extra.get("duration"),
                                 str(t.get("output", ""))))
    row.max_score = sum(t.max_score for t in row.tests)
    extra = data.get("extra_data") or {}
    sub = extra.get("submission") or {}
    row.graded_files = {str(k): str(v) for k, v in (sub.get("graded") or {}).items()}
    if sub.get("ignored"):
        row.flags.append(f"unexpected files: {', '.join(map(str, sub['ignored'][:5]))}")
    for v in sub.get("import_violations") or []:
        row.flags.append(f"import policy: {v.get('file')}, line {v.get('line')}: {v.get('module')}")
    for stop in extra.get("stopped") or []:
        row.flags.append(f"stopped by the sandbox in {stop.get('test')}: {stop.get('why')}")
    off = [p["name"] for p in extra.get("protections", []) if not p.get("active")]
    if off:
        row.flags.append(f"graded with protections off: {', '.join(off)}")
    return row


def test_names(rows: Sequence[SubmissionRow]) -> list[str]:
    """Every test once, in the order of the first grading that listed it."""
    names: dict[str, None] = {}
    for row in rows:
        for t in row.tests:
            names.setdefault(t.name)
    return list(names)


def write_csv(rows: Sequence[SubmissionRow], path: Path) -> None:
    tests = test_names(rows)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["student", "email", "sid", "submission", "total", "max", "status", "seconds",
                *tests])
    for row in rows:
        by_name = {t.name: t.score for t in row.tests}
        w.writerow([_cell(row.who.student or row.name), _cell("; ".join(row.who.emails)),
                    _cell("; ".join(row.who.sids)), _cell(row.name), f"{row.score:g}",
                    f"{row.max_score:g}", row.status, f"{row.seconds:.1f}",
                    *(f"{by_name[t]:g}" if t in by_name else "" for t in tests)])
    path.write_text(buf.getvalue(), encoding="utf-8")


def _cell(text: str) -> str:
    # A cell starting with = + - @ is a formula to spreadsheets: names are students' text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def own_source(submission: Path, graded: dict[str, str]) -> dict[str, str]:
    """module -> the source graded for it, read from the folder or the zip (a notebook as
    the code it becomes); unreadable or oversized files are left out."""
    out: dict[str, str] = {}
    for module, rel in graded.items():
        try:
            data = _read_member(submission, rel)
            if data is None:
                continue
            if rel.endswith(".ipynb"):
                with tempfile.TemporaryDirectory(prefix="autograder-nb-") as tmp:
                    path = Path(tmp) / "notebook.ipynb"
                    path.write_bytes(data)
                    out[module] = notebook_to_source(path).source
            else:
                out[module] = data.decode("utf-8", "replace")
        except (OSError, ValueError, zipfile.BadZipFile, AutograderError):
            continue  # a flag is never worth a failed report
    return out


def _read_member(submission: Path, rel: str) -> bytes | None:
    if submission.is_file():
        with zipfile.ZipFile(submission) as zf:
            try:
                info = zf.getinfo(rel)
            except KeyError:
                return None
            return zf.read(info) if info.file_size <= MAX_SOURCE_BYTES else None
    path = submission / rel
    if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_SOURCE_BYTES:
        return None
    return path.read_bytes()


# ---------------------------------------------------------------- report.html


def _figure_svg(draw: Any, width: float, height: float) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    draw(fig)
    fig.tight_layout()
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    svg = buf.getvalue()
    return svg[svg.index("<svg"):]  # drop the XML prolog and doctype: inline in HTML


def _histogram(rows: Sequence[SubmissionRow], top: float) -> str:
    scores = [r.score for r in rows if r.status in ("graded", "reused", "timed out")]

    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        bins = max(1, min(20, int(top) or 1))
        _, _, bars = ax.hist(scores, bins=bins, range=(0, top or 1), color="#4c72b0",
                             edgecolor="white")
        for i, bar in enumerate(bars):
            bar.set_gid(f"hist-bar-{i}")
        ax.set_xlabel("score")
        ax.set_ylabel("submissions")
        ax.set_title(f"Scores ({len(scores)} graded, max {top:g})")

    return _figure_svg(draw, 6, 3)


def _pass_rates(rows: Sequence[SubmissionRow]) -> list[tuple[str, float, int]]:
    graded = [r for r in rows if r.tests and r.status in ("graded", "reused", "timed out")]
    out = []
    for name in test_names(graded):
        ran = [t for r in graded for t in r.tests if t.name == name]
        out.append((name, sum(t.passed for t in ran) / len(ran) if ran else 0.0, len(ran)))
    return out


def _pass_rate_chart(rates: list[tuple[str, float, int]]) -> str:
    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        labels = [n if len(n) <= 60 else n[:57] + "..." for n, _, _ in rates]
        bars = ax.barh(range(len(rates)), [100 * r for _, r, _ in rates], color="#55a868")
        for i, bar in enumerate(bars):
            bar.set_gid(f"pass-bar-{i}")
        # parse_math off: "$" in a test name is text, not TeX (which could fail to parse)
        ax.set_yticks(range(len(rates)), labels, fontsize=7, parse_math=False)
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.set_xlabel("% of submissions passing")
        ax.set_title("Pass rate per test")

    return _figure_svg(draw, 8, max(2.0, 0.22 * len(rates) + 1))


def write_html(rows: Sequence[SubmissionRow], pairs: Sequence[Pair], *, assignment: str,
               path: Path, notes: Sequence[str] = ()) -> None:
    from jinja2 import Environment, select_autoescape

    top = max((r.max_score for r in rows), default=0.0)
    rates = _pass_rates(rows)
    durations: dict[str, list[float]] = {}
    for r in rows:
        for t in r.tests:
            if t.duration is not None:
                durations.setdefault(t.name, []).append(t.duration)
    slowest = sorted(((n, statistics.median(d), max(d)) for n, d in durations.items()),
                     key=lambda x: -x[2])[:10]
    graded = [r for r in rows if r.status in ("graded", "reused", "timed out")]
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    page = env.from_string(_TEMPLATE).render(
        assignment=assignment, rows=rows, graded=graded, top=top, pairs=pairs, notes=notes,
        mean=statistics.fmean([r.score for r in graded]) if graded else 0.0,
        histogram=_histogram(rows, top) if graded else "",
        pass_chart=_pass_rate_chart(rates) if rates else "",
        nobody=[n for n, rate, ran in rates if rate == 0 and ran],
        slowest=slowest,
        timeouts=[r for r in rows if r.status == "timed out"],
        broken=[r for r in rows if r.status in ("harness error", "name collision", "not graded")],
        flagged=[r for r in rows if r.flags],
        # JSON as JSON.parse reads it from the script element; "<" escaped so that no
        # test name can close the element
        figures_json=json.dumps({"histogram": [r.score for r in graded],
                                 "pass_rates": {n: rate for n, rate, _ in rates}}
                                ).replace("<", "\\u003c").replace(">", "\\u003e"),
    )
    path.write_text(page, encoding="utf-8")


# Figures are trusted SVG from matplotlib (|safe); every other value is escaped.
_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{{ assignment }}: grading report</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 70em; }
table { border-collapse: collapse; margin: 1em 0; } td, th { border: 1px solid #ccc;
padding: .2em .5em; text-align: left; vertical-align: top; } .bad { color: #b00; }
figure { margin: 1em 0; } pre { white-space: pre-wrap; margin: 0; font-size: .85em; }
</style></head><body>
<h1>{{ assignment }}: {{ rows|length }} submissions</h1>
<p id="summary">{{ graded|length }} graded, mean score {{ "%.2f"|format(mean) }} of {{ top }};
{{ timeouts|length }} timed out, {{ broken|length }} not graded or harness errors,
{{ flagged|length }} flagged, {{ pairs|length }} similar pairs.</p>
{% for note in notes %}<p class="note">{{ note }}</p>{% endfor %}
<figure id="score-histogram">{{ histogram|safe }}</figure>
<figure id="pass-rates">{{ pass_chart|safe }}</figure>
<script type="application/json" id="figure-data">{{ figures_json|safe }}</script>
{% if nobody %}<h2 class="bad">Tests nobody passes (look at the suite first)</h2>
<ul id="nobody">{% for n in nobody %}<li>{{ n }}</li>{% endfor %}</ul>{% endif %}
<h2>Slowest tests</h2>
<table id="slowest"><tr><th>test</th><th>median s</th><th>max s</th></tr>
{% for n, med, mx in slowest %}<tr><td>{{ n }}</td><td>{{ "%.2f"|format(med) }}</td>
<td>{{ "%.2f"|format(mx) }}</td></tr>{% endfor %}</table>
<h2>Timeouts</h2>
<table id="timeouts"><tr><th>submission</th><th>note</th></tr>
{% for r in timeouts %}<tr><td>{{ r.name }}</td><td>{{ r.note }}</td></tr>{% endfor %}</table>
<h2>Not graded and harness errors</h2>
<table id="broken"><tr><th>submission</th><th>status</th><th>note</th></tr>
{% for r in broken %}<tr><td>{{ r.name }}</td><td class="bad">{{ r.status }}</td>
<td><pre>{{ r.note }}</pre></td></tr>{% endfor %}</table>
<h2>Flagged submissions</h2>
<table id="flagged"><tr><th>submission</th><th>flags</th></tr>
{% for r in flagged %}<tr><td>{{ r.name }}</td><td>{% for f in r.flags %}{{ f }}<br>{% endfor %}
</td></tr>{% endfor %}</table>
<h2>Similar submissions (a flag, never a grade change)</h2>
<table id="similar"><tr><th>a</th><th>b</th><th>score</th><th>kind</th></tr>
{% for p in pairs %}<tr><td>{{ p.a }}</td><td>{{ p.b }}</td><td>{{ "%.2f"|format(p.score) }}</td>
<td>{{ p.kind }}</td></tr>{% endfor %}</table>
<h2>All submissions</h2>
<table id="all"><tr><th>submission</th><th>student</th><th>score</th><th>status</th>
<th>seconds</th></tr>
{% for r in rows %}<tr><td>{{ r.name }}</td><td>{{ r.who.student }}</td>
<td>{{ r.score }}/{{ r.max_score }}</td>
<td>{{ r.status }}</td><td>{{ "%.1f"|format(r.seconds) }}</td></tr>{% endfor %}</table>
</body></html>
"""


def write_reports(graded: Sequence[Any], *, assignment: str, out_dir: Path,
                  template: Path | None, notes: Sequence[str] = (),
                  submitters: dict[str, Submitters] | None = None) -> tuple[Path, Path]:
    """grades.csv and report.html in ``out_dir`` for the ``bulk.Graded`` of a batch;
    similarity is computed on the students' own code (``template``'s lines removed)."""
    from autograder.course.similarity import flag_pairs, own_code

    rows = [read_row(g.name, g.submission, g.status,
                     None if g.collision else g.results, note=g.error) for g in graded]
    for row in rows:
        row.who = (submitters or {}).get(row.name, Submitters())
    own: dict[str, str] = {}
    for row, g in zip(rows, graded, strict=True):
        if row.status not in ("graded", "reused", "timed out") or not row.graded_files:
            continue
        parts = []
        for module, source in sorted(own_source(g.submission, row.graded_files).items()):
            given = template / f"{module}.py" if template is not None else None
            base = given.read_text(errors="replace") if given and given.is_file() else ""
            parts.append(own_code(source, base))
        own[row.name] = "\n".join(parts)
    pairs = flag_pairs(own)
    by_name = {r.name: r for r in rows}
    for p in pairs:
        by_name[p.a].flags.append(f"{p.kind} to {p.b} ({p.score:.2f})")
        by_name[p.b].flags.append(f"{p.kind} to {p.a} ({p.score:.2f})")
    csv_path, html_path = out_dir / GRADES_CSV, out_dir / REPORT_HTML
    write_csv(rows, csv_path)
    write_html(rows, pairs, assignment=assignment, path=html_path, notes=notes)
    return csv_path, html_path
