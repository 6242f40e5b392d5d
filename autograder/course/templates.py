"""Student templates generated from reference solutions (``autograder template``).

``solutions/NAME`` + ``reference_tests/NAME`` -> ``assignments/NAME``: modules with the
solution blocks replaced by ``raise NotImplementedError`` stubs, their notebook twins,
support files, the course's probe module, README.md, public tests and the public part of ``assignment.toml``.
Generation is pure (:func:`generate_template` returns the files), so drift checks compare
bytes with what is committed.
"""

from __future__ import annotations

import ast
import difflib
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from autograder.config import assignment_names, is_project_file, match_name, project_files
from autograder.errors import CourseError
from autograder.grading.notebooks import mark_template, notebook_bytes, source_to_notebook
from autograder.grading.submission import todo_stub

_BEGIN = re.compile(r"(?P<indent>[ \t]*)#\s*BEGIN SOLUTION(?P<rest>.*)")
_END = re.compile(r"[ \t]*#\s*END SOLUTION(?P<rest>.*)")
_LOOSE = re.compile(r"#.*\b(BEGIN|END)[ _]+SOLUTION", re.IGNORECASE)
_IGNORED = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache", ".DS_Store"}
_PUBLIC_TABLES = ("assignment", "limits", "report", "environment")  # never copy anything else


# ---------------------------------------------------------------- solution markers


@dataclass(frozen=True)
class _Func:
    qualname: str
    lineno: int
    col: int
    region_end: int  # last line before the next statement outside the function


def _functions(body: list[ast.stmt], region_end: int, prefix: str) -> list[_Func]:
    found: list[_Func] = []
    for i, node in enumerate(body):
        if i + 1 < len(body):
            nxt = body[i + 1]
            end = min([nxt.lineno] + [d.lineno for d in getattr(nxt, "decorator_list", [])]) - 1
        else:
            end = region_end
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found.append(_Func(prefix + node.name, node.lineno, node.col_offset, end))
            found += _functions(node.body, end, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            found += _functions(node.body, end, f"{prefix}{node.name}.")
        else:
            for name in ("body", "orelse", "finalbody", "handlers"):
                found += _functions(getattr(node, name, []), end, prefix)
            for case in getattr(node, "cases", []):
                found += _functions(case.body, end, prefix)
    return found


def _marker_blocks(lines: list[str], filename: str) -> list[tuple[int, int, str, str]]:
    """(begin, end, indent, hint) of each solution block, 1-based marker lines."""
    blocks: list[tuple[int, int, str, str]] = []
    opened: tuple[int, str, str] | None = None
    for number, line in enumerate(lines, start=1):
        begin, end = _BEGIN.fullmatch(line), _END.fullmatch(line)
        if begin:
            if opened:
                raise CourseError(
                    f"{filename}:{number}: '# BEGIN SOLUTION' inside the block opened at line "
                    f"{opened[0]}; blocks cannot nest, add '# END SOLUTION' before line {number}"
                )
            rest = begin["rest"].strip()
            if rest and not rest.startswith("hint:"):
                raise CourseError(
                    f"{filename}:{number}: unexpected text {rest!r} after '# BEGIN SOLUTION'; "
                    "write '# BEGIN SOLUTION hint: ...' or nothing"
                )
            opened = (number, begin["indent"], rest.removeprefix("hint:").strip())
        elif end:
            if end["rest"].strip():
                raise CourseError(
                    f"{filename}:{number}: unexpected text {end['rest'].strip()!r} after "
                    "'# END SOLUTION'; nothing may follow the marker"
                )
            if not opened:
                raise CourseError(
                    f"{filename}:{number}: '# END SOLUTION' without a '# BEGIN SOLUTION' "
                    "before it; add the BEGIN marker or delete this line"
                )
            blocks.append((opened[0], number, opened[1], opened[2]))
            opened = None
        elif _LOOSE.search(line):
            raise CourseError(
                f"{filename}:{number}: {line.strip()!r} looks like a solution marker but is not "
                "one; write exactly '# BEGIN SOLUTION' or '# END SOLUTION'"
            )
    if opened:
        raise CourseError(
            f"{filename}:{opened[0]}: '# BEGIN SOLUTION' is never closed; "
            "add '# END SOLUTION' after the solution code"
        )
    return blocks


def strip_solutions(source: str, *, filename: str) -> str:
    """Replace each '# BEGIN SOLUTION' ... '# END SOLUTION' block by a TODO stub.

    The stub is ``raise NotImplementedError("TODO: <function>")`` at the indentation of
    the BEGIN marker, preceded by ``# Hint: ...`` when the marker carries
    ``hint: ...``. Blocks must sit inside a function body and must not nest.
    """
    source = source.replace("\r\n", "\n")
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as exc:
        raise CourseError(
            f"{filename}:{exc.lineno}: the solution does not compile ({exc.msg}); fix it first"
        ) from exc
    lines = source.split("\n")
    functions = _functions(tree.body, len(lines), "")
    out: list[str] = []
    done = 0  # lines[:done] are handled
    for begin, end, indent, hint in _marker_blocks(lines, filename):
        owners = [f for f in functions if f.lineno < begin <= f.region_end and f.col < len(indent)]
        if not owners:
            raise CourseError(
                f"{filename}:{begin}: '# BEGIN SOLUTION' is not inside a function body or is "
                "indented less than the function's code; put solution blocks in functions, "
                "indented like the code they replace (a module-level stub would break imports)"
            )
        owner = max(owners, key=lambda f: f.lineno).qualname
        out += lines[done : begin - 1]
        if hint:
            out.append(f"{indent}# Hint: {hint}")
        out.append(f"{indent}{todo_stub(owner)}")
        done = end
    out += lines[done:]
    result = "\n".join(out)
    try:
        compile(result, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise CourseError(
            f"{filename}: the template does not compile after stripping solutions "
            f"(line {exc.lineno}: {exc.msg}); indent each '# BEGIN SOLUTION' like the code "
            "it replaces"
        ) from exc
    return result


def strip_text_solutions(text: str, *, filename: str) -> str:
    """A project file (YAML, TOML, INI: ``#`` comments) without its solution blocks: each
    '# BEGIN SOLUTION' ... '# END SOLUTION' block becomes ``# TODO: <hint>`` (or ``# TODO``)
    at the marker's indentation. Blocks may sit anywhere, but must not nest."""
    lines = text.replace("\r\n", "\n").split("\n")
    out: list[str] = []
    done = 0
    for begin, end, indent, hint in _marker_blocks(lines, filename):
        out += lines[done : begin - 1]
        out.append(f"{indent}# TODO: {hint}" if hint else f"{indent}# TODO")
        done = end
    return "\n".join(out + lines[done:])


# ---------------------------------------------------------------- configuration


def _config(root: Path, name: str) -> dict[str, Any]:
    path = root / "reference_tests" / name / "assignment.toml"
    shown = f"reference_tests/{name}/assignment.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CourseError(f"{shown} is missing; see docs/authoring.md for its format") from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CourseError(f"{shown} cannot be read: {exc}") from exc
    table = data.get("assignment")
    if not isinstance(table, dict):
        raise CourseError(f"{shown} has no [assignment] table; add one with 'modules = [...]'")
    modules = table.get("modules")
    if (
        not isinstance(modules, list)
        or not modules
        or not all(isinstance(m, str) and m.isidentifier() for m in modules)
        or len(set(modules)) != len(modules)
    ):
        raise CourseError(
            f"{shown}: modules = {modules!r}; give a non-empty list of distinct module "
            'names without ".py", e.g. modules = ["layers", "mlp"]'
        )
    support = table.get("support", [])
    if not isinstance(support, list) or not all(_safe_relative(s) for s in support):
        raise CourseError(
            f"{shown}: support = {support!r}; give a list of file paths relative to "
            f'solutions/{name}/, e.g. support = ["data.py"]'
        )
    clash = {f"{m}.py" for m in modules} & {str(PurePosixPath(s)) for s in support}
    if clash:
        raise CourseError(
            f"{shown}: {sorted(clash)} listed both as module and as support; keep one"
        )
    probes = table.get("probes")
    if probes is not None:
        if not _safe_relative(probes) or not str(probes).endswith(".py"):
            raise CourseError(
                f"{shown}: probes = {probes!r}; give the path of a .py file relative to "
                f'solutions/{name}/, e.g. probes = "probes.py"'
            )
        taken = {f"{m}.py" for m in modules} | {str(PurePosixPath(s)) for s in support}
        if str(PurePosixPath(probes)) in taken:
            raise CourseError(
                f"{shown}: probes = {probes!r} is also a module or support file; the probe "
                "module is the course's, give it a file of its own"
            )
    project_files(table.get("files", []), shown, tuple(modules),
                  tuple(str(PurePosixPath(s)) for s in support))
    return data


def _safe_relative(value: object) -> bool:
    if not isinstance(value, str) or not value or "\\" in value:
        return False
    path = PurePosixPath(value)
    return not path.is_absolute() and ".." not in path.parts


def _toml_value(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v, where) for v in value) + "]"
    raise CourseError(f"{where} = {value!r}: only strings, numbers, booleans and lists are public")


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_table(name: str, table: dict[str, Any], shown: str) -> list[str]:
    out = [f"[{name}]"]
    subtables = []
    for key, value in table.items():
        if isinstance(value, dict):
            subtables.append((f"{name}.{_toml_key(key)}", value))
        else:
            out.append(f"{_toml_key(key)} = {_toml_value(value, f'{shown}: {name}.{key}')}")
    for sub_name, sub in subtables:
        out += ["", *_toml_table(sub_name, sub, shown)]
    return out


def _public_config(data: dict[str, Any], name: str) -> bytes:
    shown = f"reference_tests/{name}/assignment.toml"
    out = [
        f"# Generated by `autograder template {name}` from {shown}.",
        "# Do not edit: regenerate instead.",
    ]
    for table in _PUBLIC_TABLES:
        if isinstance(data.get(table), dict):
            out += ["", *_toml_table(table, data[table], shown)]
    text = "\n".join(out) + "\n"
    expected = {t: data[t] for t in _PUBLIC_TABLES if isinstance(data.get(t), dict)}
    if tomllib.loads(text) != expected:  # guard the tiny writer above
        tables = "/".join(f"[{t}]" for t in _PUBLIC_TABLES)
        raise CourseError(f"{shown}: {tables} cannot be copied to the template")
    return text.encode("utf-8")


# ---------------------------------------------------------------- templates


def _no_markers(path: Path, shown: str, why: str) -> bytes:
    data = path.read_bytes()
    text = data.decode("utf-8", errors="replace")
    for number, line in enumerate(text.split("\n"), start=1):
        if _LOOSE.search(line):
            raise CourseError(
                f"{shown}:{number}: has a solution marker but is copied to students as-is "
                f"({why}); remove the solution or list the module in [assignment] modules"
            )
    return data


def generate_template(root: Path, name: str) -> dict[Path, bytes]:
    """The files of ``assignments/NAME``, keyed by path relative to that folder."""
    root = Path(root)
    solution = root / "solutions" / name
    reference = root / "reference_tests" / name
    data = _config(root, name)
    table = data["assignment"]
    title = table.get("title") if isinstance(table.get("title"), str) else None
    files: dict[Path, bytes] = {}
    for module in table["modules"]:
        path = solution / f"{module}.py"
        shown = f"solutions/{name}/{module}.py"
        if not path.is_file():
            raise CourseError(f"{shown} is missing but listed in [assignment] modules; add it")
        template = strip_solutions(path.read_text(encoding="utf-8"), filename=shown)
        files[Path(f"{module}.py")] = template.encode("utf-8")
        notebook = mark_template(source_to_notebook(
            template, title=f"{title}: {module}" if title else module), template)
        files[Path(f"{module}.ipynb")] = notebook_bytes(notebook)
    # The course's probe module is public: students read what the grader runs beside their
    # code (and the yardsticks they are timed against).
    probes = [table["probes"]] if table.get("probes") else []
    for entry in [*table.get("support", []), *probes, "README.md"]:
        path = solution / entry
        shown = f"solutions/{name}/{entry}"
        if not path.is_file():
            what = ("the students' task description" if entry == "README.md" else
                    "the probe module" if entry in probes else "a support file")
            field = "probes" if entry in probes else "support"
            raise CourseError(f"{shown} is missing ({what}); add it or fix [assignment] {field}")
        files[Path(entry)] = _no_markers(path, shown, "support file")
    for rel in _project_files(solution, table.get("files", []), name):
        shown = f"solutions/{name}/{rel.as_posix()}"
        try:
            text = (solution / rel).read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            files[rel] = _no_markers(solution / rel, shown, "project file")
            continue
        files[rel] = strip_text_solutions(text, filename=shown).encode("utf-8")
    for path in sorted((reference / "public").glob("*.py")):
        shown = f"reference_tests/{name}/public/{path.name}"
        files[Path("tests", path.name)] = _no_markers(path, shown, "public test")
    files[Path("assignment.toml")] = _public_config(data, name)
    return files


def _project_files(solution: Path, patterns: list[str], name: str) -> list[Path]:
    """The solution's files matched by ``[assignment] files`` (each entry must match one)."""
    found: list[Path] = []
    on_disk = sorted(_on_disk(solution))
    for pattern in patterns:
        hits = [rel for rel in on_disk if is_project_file(rel.as_posix(), (pattern,))]
        if not hits:
            raise CourseError(f"solutions/{name}/{pattern} is missing (a project file of "
                              "[assignment] files); add it or fix the entry")
        found += [rel for rel in hits if rel not in found]
    return found


def _ignored(rel: Path) -> bool:
    return any(part in _IGNORED for part in rel.parts) or rel.suffix == ".pyc"


def _on_disk(folder: Path) -> dict[Path, Path]:
    if not folder.is_dir():
        return {}
    found = {p.relative_to(folder): p for p in folder.rglob("*") if p.is_file()}
    return {rel: p for rel, p in found.items() if not _ignored(rel)}


def check_template(root: Path, name: str) -> list[str]:
    """Drift between ``assignments/NAME`` and what would be generated; empty when in sync."""
    root = Path(root)
    expected = generate_template(root, name)
    actual = _on_disk(root / "assignments" / name)
    fix = f"run `autograder template {name}`"
    report = []
    for rel in sorted(set(expected) | set(actual)):
        shown = f"assignments/{name}/{rel.as_posix()}"
        if rel not in actual:
            report.append(f"{shown} is missing; {fix}")
        elif rel not in expected:
            report.append(f"{shown} is not generated from solutions/{name}; delete it or {fix}")
        elif _normalized(actual[rel].read_bytes()) != _normalized(expected[rel]):
            report.append(f"{shown} differs from solutions/{name}; {fix}"
                          + _diff(actual[rel].read_bytes(), expected[rel], shown))
    return report


def _diff(actual: bytes, expected: bytes, shown: str, limit: int = 40) -> str:
    """The first lines of a unified diff (committed -> generated), for text files."""
    try:
        old = _normalized(actual).decode("utf-8").splitlines()
        new = _normalized(expected).decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return ""
    lines = list(difflib.unified_diff(old, new, f"{shown} (committed)", f"{shown} (generated)",
                                      lineterm="", n=1))
    more = f"\n  ... {len(lines) - limit} more diff lines" if len(lines) > limit else ""
    return "".join("\n  " + line for line in lines[:limit]) + more


def _normalized(data: bytes) -> bytes:
    # a Windows checkout (autocrlf) is not drift
    return data.replace(b"\r\n", b"\n")


def write_template(root: Path, name: str) -> list[Path]:
    """Make ``assignments/NAME`` equal to the generated template.

    Writes only files whose bytes change and deletes files that are not generated
    (caches excepted). Returns the changed paths, relative to the template folder.
    """
    root = Path(root)
    folder = root / "assignments" / name
    expected = generate_template(root, name)
    actual = _on_disk(folder)
    changed = []
    for rel, content in sorted(expected.items()):
        target = folder / rel
        if rel in actual and actual[rel].read_bytes() == content:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        changed.append(rel)
    for rel in sorted(set(actual) - set(expected)):
        actual[rel].unlink()
        changed.append(rel)
    for directory in sorted((d for d in folder.rglob("*") if d.is_dir()), reverse=True):
        if not any(directory.iterdir()):
            directory.rmdir()
    return changed


# ---------------------------------------------------------------- names


def resolve_assignment(root: Path, key: str) -> str:
    """Map "a1", "a1_numpy_nn" (or a path ending in it) to the assignment's folder name."""
    return match_name(
        assignment_names(root, where="solutions"), key,
        none_known="none (no solutions/NAME with a reference_tests/NAME twin)")
