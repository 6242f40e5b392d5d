"""Notebooks as submissions and as template twins.

A submission may provide ``NAME.ipynb`` instead of ``NAME.py``. Its code cells become
the module; IPython-only syntax (magics, shell escapes, ``get_ipython()`` statements,
help syntax) is replaced by a comment and reported, never executed.

Line numbers: the converted source starts each code cell with a marker line
``# %% [cell N]`` (N counts every cell of the notebook from 1, markdown included, as a
student sees them top to bottom), and every line of a cell keeps its own line, so
``ConvertedNotebook.cell_line_of(lineno)`` maps a traceback line of the module back to
``(cell, line_in_cell)``.

``from __future__`` imports: Jupyter compiles each cell on its own, so a cell may start
with one even below other cells. When any would not be at the beginning of the joined
module, all of them are moved to its top (one line each, before the first marker; that
line maps to the cell and line it came from) and their own lines become comments.

Cells kept out of grading: a code cell tagged ``skip-grading`` (Jupyter: View > Cell
Toolbar > Tags), or whose first line is the comment ``# autograder: skip``, is left out
of the module (scratch work, plots, long training runs); the grading says which.

Template twins: ``autograder template`` records in each generated notebook's metadata
(``autograder.template``) a fingerprint of its code and of the ``.py`` twin, so a grading
can tell a twin that is unchanged from the template (ignored silently) from one the
student edited.

Untrusted input: the JSON is checked for nesting depth and for the number of objects and
arrays before it is parsed, so a small file cannot exhaust the grader's stack or memory.
"""

from __future__ import annotations

import ast
import hashlib
import re
import warnings
from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path

import nbformat

from autograder.errors import SubmissionError

STRIP_PREFIX = "# [autograder] stripped: "
CELL_MARKER = "# %% [cell {}]"
MOVED_PREFIX = "# [autograder] moved to the top: "
# A notebook nests about 6 levels deep (widget state a few more); nbformat recurses per
# level and fails near 500. Each object or array costs ~500 bytes once parsed and validated.
MAX_JSON_DEPTH = 100
MAX_JSON_CONTAINERS = 100_000
MAX_PARSED_CHARS = 100_000  # ast.parse needs ~500 bytes of memory per character
SKIP_TAG = "skip-grading"  # a cell tag that keeps the cell out of grading
_SKIP_COMMENT = re.compile(r"#\s*autograder\s*:\s*skip\b", re.IGNORECASE)


@dataclass(frozen=True)
class StrippedLine:
    cell: int  # 1-based, counting all cells
    line: int  # 1-based within the cell
    text: str
    reason: str


@dataclass(frozen=True)
class ConvertedNotebook:
    source: str
    stripped: list[StrippedLine]
    # (first source line, cell, its line in the cell) of each run of source lines that
    # come from consecutive lines of one cell; cell 0 for marker/padding lines and after
    # the end. Runs, not one entry per line: a huge cell must not cost a tuple per line.
    runs: tuple[tuple[int, int, int], ...] = field(default=(), repr=False)
    skipped: tuple[int, ...] = ()  # code cells kept out of grading (tag or comment)
    code_sha256: str = ""  # fingerprint of the code cells (code_fingerprint)
    # What `autograder template` recorded: {"py_sha256": ..., "code_sha256": ...}, or {}.
    template: dict[str, str] = field(default_factory=dict)

    def unchanged_from_template(self) -> bool:
        return bool(self.template) and self.template.get("code_sha256") == self.code_sha256

    def cell_line_of(self, source_line: int) -> tuple[int, int] | None:
        """(cell, line in cell) of a 1-based line of ``source``; None for marker lines."""
        at = bisect_right(self.runs, source_line, key=lambda run: run[0]) - 1
        if source_line < 1 or at < 0 or self.runs[at][1] == 0:
            return None
        start, cell, line = self.runs[at]
        return cell, line + source_line - start


# ---------------------------------------------------------------- notebook -> source


def _lines(text: str) -> list[str]:
    # Python's own line breaks only: str.splitlines() also splits on form feeds etc.
    return re.split(r"\r\n|\r|\n", text.removesuffix("\n").removesuffix("\r")) if text else []


_HELP = re.compile(r"\?{1,2}[\w.*]+|%{0,2}[\w.*]+\?{1,2}")
_ASSIGN_MAGIC = re.compile(r"[\w.]+(\s*,\s*[\w.]+)*\s*=\s*([!%])")
_GET_IPYTHON = re.compile(r"([\w.]+(\s*,\s*[\w.]+)*\s*=\s*)?get_ipython\s*\(")


@dataclass
class _ScanState:
    """Where a physical line ends, lexically: inside a string, brackets, continuation."""

    quote: str | None = None  # the open string's delimiter
    depth: int = 0
    continued: bool = False

    @property
    def clean(self) -> bool:
        return self.quote is None and self.depth == 0 and not self.continued


def _scan(line: str, st: _ScanState) -> None:
    """Advance ``st`` over one physical line (without its newline)."""
    st.continued = False
    i, n = 0, len(line)
    while i < n:
        ch = line[i]
        if st.quote is not None:
            if ch == "\\":
                i += 2
                continue
            if line.startswith(st.quote, i):
                i += len(st.quote)
                st.quote = None
                continue
            i += 1
            continue
        if ch == "#":
            return
        if ch in "\"'":
            triple = line[i : i + 3]
            st.quote = triple if triple in ('"""', "'''") else ch
            i += len(st.quote)
            continue
        if ch in "([{":
            st.depth += 1
        elif ch in ")]}":
            st.depth = max(0, st.depth - 1)
        elif ch == "\\" and i == n - 1:
            st.continued = True
        i += 1
    if st.quote is not None and len(st.quote) == 1:
        # a one-quote string only spans lines through a trailing backslash
        if line.endswith("\\"):
            st.continued = True
        else:
            st.quote = None


def _classify(stmt: str, first_in_cell: bool) -> str | None:
    """Reason to strip a statement that starts a logical line, or None for Python."""
    if m := _ASSIGN_MAGIC.match(stmt):
        stmt = stmt[m.end() - 1 :]  # "x = !ls" is judged by its right-hand side
    word = stmt.split()[0] if stmt.split() else stmt
    if stmt.startswith("%%") and first_in_cell:
        return f"cell magic {word} (whole cell dropped)"
    if stmt.startswith("%"):
        return f"line magic {word}"
    if stmt.startswith("!"):
        command = stmt[1:].split()
        return f"shell escape !{command[0] if command else ''}".rstrip()
    if _GET_IPYTHON.match(stmt):
        return "get_ipython() call"
    if _HELP.fullmatch(stmt):
        return f"help syntax {stmt}"
    return None


def _stub(indent: str, reason: str) -> str:
    # an indented stripped line may be a block's only statement: keep the block valid
    return f"{indent}pass  {STRIP_PREFIX}{reason}" if indent else f"{STRIP_PREFIX}{reason}"


def _drop_cell(lines: list[str], cell: int, first: str) -> tuple[list[str], list[StrippedLine]]:
    reason = _classify(first, True) or "cell magic"
    at = next(i for i, ln in enumerate(lines) if ln.strip())
    out = [f"{STRIP_PREFIX}(continued)" if ln.strip() else "" for ln in lines]
    out[at] = f"{STRIP_PREFIX}{reason}"
    return out, [StrippedLine(cell, at + 1, lines[at], reason)]


def _statement_end(lines: list[str], i: int, python: bool) -> int:
    """Index after the last physical line of the stripped statement starting at i."""
    if python:  # get_ipython(...) may span brackets or strings
        st = _ScanState()
        _scan(lines[i], st)
        i += 1
        while i < len(lines) and not st.clean:
            _scan(lines[i], st)
            i += 1
        return i
    while i < len(lines) and lines[i].rstrip().endswith("\\"):  # magics continue with "\\"
        i += 1
    return min(i + 1, len(lines))


def _convert_cell(text: str, cell: int) -> tuple[list[str], list[StrippedLine]]:
    lines = _lines(text)
    first = next((ln.strip() for ln in lines if ln.strip()), "")
    if first.startswith("%%"):
        return _drop_cell(lines, cell, first)
    out: list[str] = []
    stripped: list[StrippedLine] = []
    st = _ScanState()
    i = 0
    while i < len(lines):
        line = lines[i]
        reason = _classify(line.strip(), False) if st.clean and line.strip() else None
        if reason is None:
            _scan(line, st)
            out.append(line)
            i += 1
            continue
        stripped.append(StrippedLine(cell, i + 1, line, reason))
        out.append(_stub(line[: len(line) - len(line.lstrip())], reason))
        end = _statement_end(lines, i, reason == "get_ipython() call")
        out.extend(f"{STRIP_PREFIX}(continued)" for _ in range(i + 1, end))
        i = end
    return out, stripped


def _parse(text: str) -> ast.Module | None:
    """The AST of a short piece of code (one logical line), or None."""
    if len(text) > MAX_PARSED_CHARS:  # the grader parses; a huge AST costs gigabytes
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning: compiling the module shows them
            return ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _is_future(node: ast.stmt) -> bool:
    return isinstance(node, ast.ImportFrom) and node.module == "__future__" and node.level == 0


def _is_docstring(node: ast.stmt) -> bool:
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str))


def _logical_lines(lines: list[str]) -> list[tuple[int, int]]:
    """[first, end) line indices of each logical line holding code (not only a comment)."""
    found: list[tuple[int, int]] = []
    st = _ScanState()
    i = 0
    while i < len(lines):
        first = i
        _scan(lines[i], st)
        i += 1
        while i < len(lines) and not st.clean:
            _scan(lines[i], st)
            i += 1
        if lines[first].strip() and not lines[first].lstrip().startswith("#"):
            found.append((first, i))
    return found


def _blank_futures(lines: list[str], tree: ast.Module) -> list[str] | None:
    """The lines of one logical line with its ``__future__`` imports taken out: comments
    where it holds nothing else, else ``pass`` in their place (``x = 1; from __future__
    import ...`` on one line); None where neither is safe (the line is then left alone)."""
    if all(_is_future(n) for n in tree.body):
        return [MOVED_PREFIX + lines[0].strip()] + [MOVED_PREFIX + "(continued)"] * (len(lines) - 1)
    if len(lines) != 1:
        return None
    line = lines[0].encode("utf-8", "surrogatepass")  # ast offsets count UTF-8 bytes
    for node in reversed(tree.body):
        if _is_future(node):
            line = line[: node.col_offset] + b"pass" + line[node.end_col_offset or 0 :]
    new = line.decode("utf-8", "surrogatepass")
    after = _parse(new)
    expected = [ast.dump(ast.Pass() if _is_future(n) else n) for n in tree.body]
    if after is None or [ast.dump(n) for n in after.body] != expected:
        return None
    return [new]


def _hoist_futures(cells: list[tuple[int, list[str]]]) -> list[tuple[str, tuple[int, int]]]:
    """Where joining the cells would put a ``__future__`` import after other statements
    (fine in Jupyter, which compiles cell by cell), take every top-level one out of its
    cell (in place) and return the lines that import them at the top, with their origin.

    Works on logical lines (the lexical scan above) and parses only those that mention
    ``__future__`` or may be a leading docstring, so it stays cheap on huge cells."""
    if not any("__future__" in line for _, lines in cells for line in lines):
        return []
    first, misplaced = True, False
    started = False  # a statement other than a leading docstring or __future__ import seen
    moves: list[tuple[int, list[str], int, int, ast.Module]] = []
    for number, lines in cells:
        for begin, end in _logical_lines(lines):
            text = "\n".join(lines[begin:end])
            top = not lines[begin][:1].isspace()
            tree = _parse(text) if top and ("__future__" in text or first) else None
            if tree is None:
                first, started = False, True
                continue
            if any(_is_future(n) for n in tree.body):
                moves.append((number, lines, begin, end, tree))
            for node in tree.body:
                if _is_future(node):
                    misplaced = misplaced or started
                elif not (first and _is_docstring(node)):
                    started = True
                first = False
    if not misplaced:
        return []
    header: list[tuple[str, tuple[int, int]]] = []
    for number, lines, begin, end, tree in moves:
        new = _blank_futures(lines[begin:end], tree)
        if new is None:
            continue
        lines[begin:end] = new
        header += [(f"{ast.unparse(n)}  # [autograder] moved here from cell {number}",
                    (number, begin + n.lineno)) for n in tree.body if _is_future(n)]
    return header


def source_sha256(text: str) -> str:
    """Fingerprint of a module's text (line endings normalized: a Windows checkout is the
    same file)."""
    return hashlib.sha256(text.replace("\r\n", "\n").encode("utf-8", "surrogatepass")).hexdigest()


def code_fingerprint(nb: nbformat.NotebookNode) -> str:
    """Fingerprint of a notebook's code cells (outputs, metadata and markdown aside)."""
    return source_sha256("\n\0\n".join(str(c.source) for c in nb.cells if c.cell_type == "code"))


def mark_template(nb: nbformat.NotebookNode, py_source: str) -> nbformat.NotebookNode:
    """Record in a generated twin the fingerprints a grading compares with (see above)."""
    nb.metadata["autograder"] = {"template": {"py_sha256": source_sha256(py_source),
                                              "code_sha256": code_fingerprint(nb)}}
    return nb


def skipped_by_student(cell: nbformat.NotebookNode) -> bool:
    """A code cell tagged ``skip-grading`` or starting with ``# autograder: skip``."""
    tags = cell.get("metadata", {}).get("tags", [])
    if isinstance(tags, list) and SKIP_TAG in tags:
        return True
    first = next((ln.strip() for ln in _lines(str(cell.source)) if ln.strip()), "")
    return bool(_SKIP_COMMENT.match(first))


def _template_record(nb: nbformat.NotebookNode) -> dict[str, str]:
    record = nb.get("metadata", {}).get("autograder", {})
    record = record.get("template", {}) if isinstance(record, dict) else {}
    if not isinstance(record, dict):
        return {}
    return {k: v for k, v in record.items() if k in ("py_sha256", "code_sha256")
            and isinstance(v, str)}


def _convert(nb: nbformat.NotebookNode) -> ConvertedNotebook:
    cells: list[tuple[int, list[str]]] = []
    stripped: list[StrippedLine] = []
    skipped: list[int] = []
    for number, cell in enumerate(nb.cells, start=1):
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        if skipped_by_student(cell):
            skipped.append(number)
            continue
        lines, found = _convert_cell(cell.source, number)
        stripped.extend(found)
        cells.append((number, lines))
    out: list[str] = []
    runs: list[tuple[int, int, int]] = []

    def place(lines: list[str], cell: int = 0, line: int = 0) -> None:
        runs.append((len(out) + 1, cell, line))
        out.extend(lines)

    for text, (cell, line) in _hoist_futures(cells):
        place([text], cell, line)
    for number, lines in cells:
        place(["", CELL_MARKER.format(number)] if out else [CELL_MARKER.format(number)])
        place(lines, number, 1)
    place([])  # past the end
    source = "\n".join(out) + "\n" if out else ""
    return ConvertedNotebook(source=source, stripped=stripped, runs=tuple(runs),
                             skipped=tuple(skipped), code_sha256=code_fingerprint(nb),
                             template=_template_record(nb))


# A string, or an unclosed one up to the end: every match succeeds where it starts, so the
# scan is linear (a pattern that needs the closing quote rescans the rest of the text from
# every quote of an unclosed string: quadratic).
_JSON_STRING = re.compile(r'"(?:[^"\\]+|\\.)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def _json_shape_problem(text: str, fix: str) -> str | None:
    """Why JSON text is too deep or holds too many objects and arrays to parse safely,
    and the fix.

    Exact for valid JSON (strings are skipped); for invalid JSON only an estimate, but
    the parser rejects that anyway."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    depth = max(accumulate(1 if c in "[{" else -1 for c in brackets), default=0)
    if depth > MAX_JSON_DEPTH:
        return (f"its JSON is nested {depth} levels deep (at most {MAX_JSON_DEPTH} are read; "
                f"a notebook needs fewer than 10); {fix}")
    containers = brackets.count("[") + brackets.count("{")
    if containers > MAX_JSON_CONTAINERS:
        return (f"it holds {containers} JSON objects and arrays (at most "
                f"{MAX_JSON_CONTAINERS} are read: large outputs or widget state?); "
                f"clear its outputs and {fix}")
    return None


def notebook_to_source(path: Path) -> ConvertedNotebook:
    """The module source of a notebook submission; nothing in it is executed."""
    path = Path(path)
    fix = f"re-save it from Jupyter or submit {path.stem}.py instead"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SubmissionError(f"{path.name} cannot be read as a notebook ({exc}); {fix}") from exc
    shape = _json_shape_problem(text, fix)
    if shape is not None:
        raise SubmissionError(f"{path.name} is not a valid notebook: {shape}")
    try:
        try:
            with warnings.catch_warnings():
                # notebooks from older tools lack cell ids; harmless for grading
                warnings.simplefilter("ignore")
                nb = nbformat.reads(text, as_version=4)
                nbformat.validate(nb)
        except (ValueError, AttributeError, KeyError, TypeError, nbformat.ValidationError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SubmissionError(f"{path.name} is not a valid notebook: {first}; {fix}") from exc
        return _convert(nb)
    except RecursionError as exc:  # the depth check above should make this unreachable
        raise SubmissionError(f"{path.name} is not a valid notebook: it is nested too deeply "
                              f"to read; {fix}") from exc
    except MemoryError as exc:
        raise SubmissionError(f"{path.name} is too large to read as a notebook (out of "
                              f"memory); clear its outputs and {fix}") from exc


# ---------------------------------------------------------------- source -> notebook


def _chunks(source: str) -> list[tuple[str, int, int]]:
    """Split a module into (kind, first, last) 1-based line ranges covering every line.

    Kinds: "doc" (module docstring), "import" (consecutive imports), "def" (one
    function/class with its decorators), "code" (other statements). Comments between
    two chunks go with the chunk below them.
    """
    tree = ast.parse(source)
    lines = _lines(source)
    starts: list[tuple[str, int]] = [("code", 1)]
    prev_kind, prev_end = "code", 0
    doc = tree.body[0] if ast.get_docstring(tree) is not None else None
    if doc and len(tree.body) > 1 and tree.body[1].lineno <= (doc.end_lineno or 0):
        doc = None  # docstring and code share a line ("...; import x"): keep it as code
    for node in tree.body:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        last = node.end_lineno or node.lineno
        if node is doc:
            starts += [("doc", first), ("code", last + 1)]
            prev_kind, prev_end = "code", last
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            kind = "import"
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            kind = "def"
        else:
            kind = "code"
        if first > prev_end and (kind != prev_kind or kind == "def"):
            # comments between statements introduce what follows (e.g. section banners)
            starts.append((kind, prev_end + 1))
        prev_kind, prev_end = kind, last
    bounds = [s for _, s in starts[1:]] + [len(lines) + 1]
    return [(kind, first, nxt - 1) for (kind, first), nxt in zip(starts, bounds, strict=True)]


def source_to_notebook(source: str, *, title: str | None = None) -> nbformat.NotebookNode:
    """A notebook twin of a module: docstring as markdown, imports, then one cell per def.

    Every line except the module docstring lands, unchanged, in a code cell (blank lines
    at cell edges are dropped), so converting the notebook back gives the same code.
    Cell ids are stable ("cell-0001", ...), so regenerating never drifts.
    """
    lines = _lines(source)
    cells: list[nbformat.NotebookNode] = []
    markdown: list[str] = [f"# {title}"] if title else []
    for kind, first, last in _chunks(source):
        text = "\n".join(lines[first - 1 : last]).strip("\n")
        if kind == "doc":
            markdown.append(ast.get_docstring(ast.parse(source)) or "")
            continue
        if text.strip():
            cells.append(nbformat.v4.new_code_cell(text))
    if markdown:
        cells.insert(0, nbformat.v4.new_markdown_cell("\n\n".join(markdown)))
    for number, cell in enumerate(cells, start=1):
        cell["id"] = f"cell-{number:04d}"
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    return nb


def notebook_bytes(nb: nbformat.NotebookNode) -> bytes:
    """Deterministic JSON of a notebook (sorted keys, indent 1, final newline)."""
    text = nbformat.writes(nb, version=4)
    return (text if text.endswith("\n") else text + "\n").encode("utf-8")


def write_notebook(nb: nbformat.NotebookNode, path: Path) -> None:
    Path(path).write_bytes(notebook_bytes(nb))
