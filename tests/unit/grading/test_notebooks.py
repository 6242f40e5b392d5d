"""Notebook submissions -> module source, and module templates -> notebook twins."""

from __future__ import annotations

import ast
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

import nbformat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autograder.errors import SubmissionError
from autograder.grading.notebooks import (
    CELL_MARKER,
    MAX_JSON_CONTAINERS,
    MAX_JSON_DEPTH,
    MOVED_PREFIX,
    STRIP_PREFIX,
    ConvertedNotebook,
    StrippedLine,
    notebook_bytes,
    notebook_to_source,
    source_to_notebook,
    write_notebook,
)

_MARKER = re.compile(re.escape(CELL_MARKER).replace(r"\{\}", r"\d+"))
REPO = Path(__file__).resolve().parents[3]
STDLIB = Path(os.__file__).parent


def _notebook(tmp_path: Path, *cells: str | tuple[str, str], name: str = "layers") -> Path:
    """Write a notebook; a plain string is a code cell, (kind, text) any other cell."""
    made = []
    for cell in cells:
        kind, text = cell if isinstance(cell, tuple) else ("code", cell)
        maker = {"code": nbformat.v4.new_code_cell, "markdown": nbformat.v4.new_markdown_cell}
        made.append(maker.get(kind, nbformat.v4.new_raw_cell)(text))
    path = tmp_path / f"{name}.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=made), path)
    return path


def _convert(tmp_path: Path, *cells: str | tuple[str, str]) -> ConvertedNotebook:
    return notebook_to_source(_notebook(tmp_path, *cells))


# ---------------------------------------------------------------- notebook -> source


def test_code_cells_are_joined_with_cell_markers(tmp_path: Path) -> None:
    converted = _convert(
        tmp_path,
        ("markdown", "# Layers\nprint('not code')"),
        "import numpy as np",
        ("raw", "raw text"),
        "   \n",  # blank code cells are skipped
        "def f(x):\n    return x + 1",
    )
    assert converted.source == (
        "# %% [cell 2]\nimport numpy as np\n\n# %% [cell 5]\ndef f(x):\n    return x + 1\n"
    )
    assert converted.stripped == []
    compile(converted.source, "layers.py", "exec")


def test_cell_line_of_maps_module_lines_back_to_cells(tmp_path: Path) -> None:
    converted = _convert(tmp_path, ("markdown", "intro"), "a = 1\nb = 2", "c = 3")
    lines = converted.source.splitlines()
    assert [converted.cell_line_of(n) for n in range(1, len(lines) + 1)] == [
        None,  # "# %% [cell 2]"
        (2, 1),
        (2, 2),
        None,  # blank separator
        None,  # "# %% [cell 3]"
        (3, 1),
    ]
    assert converted.cell_line_of(0) is None
    assert converted.cell_line_of(len(lines) + 1) is None


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("%matplotlib inline", "line magic %matplotlib"),
        ("%load_ext autoreload", "line magic %load_ext"),
        ("!pip install torch", "shell escape !pip"),
        ("! ls -la", "shell escape !ls"),
        ("files = !ls", "shell escape !ls"),
        ("a, b = !echo 1 2", "shell escape !echo"),
        ("t = %timeit -o f()", "line magic %timeit"),
        ("get_ipython().run_line_magic('matplotlib', 'inline')", "get_ipython() call"),
        ("ip = get_ipython()", "get_ipython() call"),
        ("np.zeros?", "help syntax np.zeros?"),
        ("np.zeros??", "help syntax np.zeros??"),
        ("?np.zeros", "help syntax ?np.zeros"),
        ("np.*load*?", "help syntax np.*load*?"),
    ],
)
def test_ipython_syntax_is_replaced_by_a_comment(tmp_path: Path, line: str, reason: str) -> None:
    converted = _convert(tmp_path, f"x = 1\n{line}\ny = 2")
    assert converted.source.splitlines()[1:] == ["x = 1", f"{STRIP_PREFIX}{reason}", "y = 2"]
    assert converted.stripped == [StrippedLine(cell=1, line=2, text=line, reason=reason)]
    compile(converted.source, "layers.py", "exec")


def test_cell_magic_drops_the_whole_cell(tmp_path: Path) -> None:
    converted = _convert(tmp_path, "x = 1", "\n%%bash\necho hi\n\nrm -rf /", "y = 2")
    assert converted.stripped == [
        StrippedLine(cell=2, line=2, text="%%bash", reason="cell magic %%bash (whole cell dropped)")
    ]
    body = converted.source.split("# %% [cell 2]\n")[1].split("\n\n# %% [cell 3]")[0]
    assert body.splitlines() == [
        "",
        f"{STRIP_PREFIX}cell magic %%bash (whole cell dropped)",
        f"{STRIP_PREFIX}(continued)",
        "",
        f"{STRIP_PREFIX}(continued)",
    ]
    assert "echo" not in converted.source and "rm -rf" not in converted.source
    compile(converted.source, "layers.py", "exec")


def test_line_numbers_stay_stable_across_stripped_lines(tmp_path: Path) -> None:
    cell = "import os\n%time x = 1\n!ls \\\n  -la\nget_ipython().system(\n    'ls'\n)\nboom = 1 / 0"
    converted = _convert(tmp_path, cell)
    boom = converted.source.splitlines().index("boom = 1 / 0") + 1
    assert converted.cell_line_of(boom) == (1, 8)
    assert [(s.line, s.reason) for s in converted.stripped] == [
        (2, "line magic %time"),
        (3, "shell escape !ls"),
        (5, "get_ipython() call"),
    ]
    assert converted.source.count(f"{STRIP_PREFIX}(continued)") == 3
    compile(converted.source, "layers.py", "exec")


def test_indented_magic_keeps_its_block_valid(tmp_path: Path) -> None:
    converted = _convert(tmp_path, "for i in range(3):\n    !echo {i}\nx = 1")
    assert f"    pass  {STRIP_PREFIX}shell escape !echo" in converted.source.splitlines()
    compile(converted.source, "layers.py", "exec")


@pytest.mark.parametrize(
    "cell",
    [
        "s = '''\n%not a magic\n!not a shell\nwhat?\n'''",
        's = """\\\n!still a string"""',
        "x = (1,\n     -2)\ny = x != (1, 2)",
        "total = 7 % 3  # really?",
        "msg = 'is it?'",
        "def f():\n    return 1 if True else 2  # what?",
        "x = [\n    1,\n]\nget_ipython_like = 3",
        "h = 'a \\\n!ls'",
    ],
)
def test_python_code_is_left_alone(tmp_path: Path, cell: str) -> None:
    converted = _convert(tmp_path, cell)
    assert converted.stripped == []
    assert converted.source == f"# %% [cell 1]\n{cell}\n"


def test_nothing_is_executed(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    path = _notebook(
        tmp_path,
        f"!touch {canary}",
        f"%%bash\ntouch {canary}",
        f"get_ipython().system('touch {canary}')",
        f"open({str(canary)!r}, 'w').write('x')",
    )
    converted = notebook_to_source(path)
    assert not canary.exists()
    assert len(converted.stripped) == 3


def test_old_notebooks_are_accepted_quietly(tmp_path: Path) -> None:
    v44 = {
        "nbformat": 4,
        "nbformat_minor": 4,
        "metadata": {},
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "metadata": {},
                "outputs": [],
                "source": ["x = 1\n", "y = 2"],
            }
        ],
    }
    path = tmp_path / "mlp.ipynb"
    path.write_text(json.dumps(v44))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        converted = notebook_to_source(path)
    assert converted.source == "# %% [cell 1]\nx = 1\ny = 2\n"


def test_nbformat_3_notebooks_are_converted(tmp_path: Path) -> None:
    v3 = {
        "nbformat": 3,
        "nbformat_minor": 0,
        "metadata": {},
        "worksheets": [{"cells": [{"cell_type": "code", "input": "x = 1", "outputs": []}]}],
    }
    path = tmp_path / "mlp.ipynb"
    path.write_text(json.dumps(v3))
    assert notebook_to_source(path).source == "# %% [cell 1]\nx = 1\n"


def test_form_feeds_do_not_split_lines(tmp_path: Path) -> None:
    converted = _convert(tmp_path, "x = 1\x0c\ny = 2")
    assert converted.source == "# %% [cell 1]\nx = 1\x0c\ny = 2\n"
    assert converted.cell_line_of(3) == (1, 2)


def rejection(tmp_path: Path, content: bytes) -> SubmissionError:
    """The SubmissionError raised for a layers.ipynb holding ``content``."""
    path = tmp_path / "layers.ipynb"
    path.write_bytes(content)
    with pytest.raises(SubmissionError) as info:
        notebook_to_source(path)
    return info.value


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b"{not json", "does not appear to be JSON"),
        (b"[1, 2]", "is not a valid notebook"),
        (b'"text"', "is not a valid notebook"),
        (b"{}", "is not a valid notebook"),
        (b'{"nbformat": 9, "nbformat_minor": 0, "cells": [], "metadata": {}}', "version 9"),
        (
            b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {},'
            b' "cells": [{"cell_type": "code"}]}',
            "is not a valid notebook",
        ),
        (b"\xff\xfe garbage", "cannot be read"),
    ],
)
def test_broken_notebooks_raise_submission_error(
    tmp_path: Path, content: bytes, detail: str
) -> None:
    error = rejection(tmp_path, content)
    message = str(error)
    assert message.startswith("layers.ipynb ")
    assert detail in message
    assert "re-save it from Jupyter or submit layers.py" in message
    assert error.__cause__ is not None


def test_missing_notebook_raises_submission_error(tmp_path: Path) -> None:
    with pytest.raises(SubmissionError, match=r"mlp\.ipynb cannot be read.*submit mlp\.py"):
        notebook_to_source(tmp_path / "mlp.ipynb")


def _valid_notebook_json(metadata: str = "{}", source: str = "x = 1") -> str:
    return (
        '{"nbformat": 4, "nbformat_minor": 5, "metadata": ' + metadata + ', "cells": '
        '[{"cell_type": "code", "id": "c1", "metadata": {}, "outputs": [], '
        '"execution_count": null, "source": ' + json.dumps(source) + "}]}"
    )


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        ("[" * 200_000 + "]" * 200_000, "its JSON is nested 200000 levels deep"),
        (_valid_notebook_json('{"deep": ' + "[" * 600 + "]" * 600 + "}"), "nested 602 levels"),
        (
            _valid_notebook_json('{"many": [' + ",".join(["[]"] * MAX_JSON_CONTAINERS) + "]}"),
            f"holds {MAX_JSON_CONTAINERS + 7} JSON objects and arrays (at most "
            f"{MAX_JSON_CONTAINERS} are read",
        ),
    ],
    ids=["bare-nesting", "nesting-in-metadata", "too-many-containers"],
)
def test_deep_or_huge_json_is_an_invalid_notebook(tmp_path: Path, content: str, detail: str) -> None:
    """Used to raise RecursionError in nbformat (a harness error); now a student's problem."""
    message = str(rejection(tmp_path, content.encode()))
    assert message.startswith("layers.ipynb is not a valid notebook: ")
    assert detail in message
    assert message.endswith("re-save it from Jupyter or submit layers.py instead")


def test_json_limits_leave_real_notebooks_alone(tmp_path: Path) -> None:
    deep = "[" * (MAX_JSON_DEPTH - 5) + "]" * (MAX_JSON_DEPTH - 5)
    many = ",".join(["{}"] * (MAX_JSON_CONTAINERS // 2))
    code = "x = [[[[" * 10_000 + "]" * 40_000 + '  # "quoted" \\ [{'  # in strings: not JSON
    path = tmp_path / "layers.ipynb"
    path.write_text(_valid_notebook_json('{"deep": ' + deep + ', "many": [' + many + "]}", code))
    assert notebook_to_source(path).source == f"# %% [cell 1]\n{code}\n"


@pytest.mark.parametrize("error", [RecursionError, MemoryError])
def test_parser_exhaustion_is_an_invalid_notebook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: type[Exception]
) -> None:
    path = _notebook(tmp_path, "x = 1")

    def exhausted(*args: object, **kwargs: object) -> None:
        raise error()

    monkeypatch.setattr(nbformat, "reads", exhausted)
    with pytest.raises(SubmissionError, match=r"^layers\.ipynb .*submit layers\.py instead$"):
        notebook_to_source(path)


# ---------------------------------------------------------------- __future__ imports


def _compiles(source: str) -> bool:
    try:
        compile(source, "layers.py", "exec")
    except SyntaxError:
        return False
    return True


def _joined(cells: list[str]) -> str:
    return "\n\n".join(f"# %% [cell {n}]\n{c}" for n, c in enumerate(cells, 1)) + "\n"


def test_future_import_below_a_new_cell_is_moved_to_the_top(tmp_path: Path) -> None:
    """A student adds a cell above the template's import cell: Jupyter runs it fine."""
    imports = "from __future__ import annotations\n\nimport math\n\ndef f(x: Nope) -> int:\n    return 1"
    converted = _convert(tmp_path, ("markdown", "# Layers"), "import os", imports)
    lines = converted.source.splitlines()
    assert lines == [
        "from __future__ import annotations  # [autograder] moved here from cell 3",
        "",
        "# %% [cell 2]",
        "import os",
        "",
        "# %% [cell 3]",
        f"{MOVED_PREFIX}from __future__ import annotations",
        "",
        "import math",
        "",
        "def f(x: Nope) -> int:",
        "    return 1",
    ]
    assert converted.cell_line_of(1) == (3, 1)
    assert converted.cell_line_of(2) is None
    assert converted.cell_line_of(4) == (2, 1)
    assert converted.cell_line_of(7) == (3, 1)
    assert converted.cell_line_of(11) == (3, 5)
    assert converted.cell_line_of(13) is None
    assert converted.stripped == []
    namespace: dict[str, Any] = {}
    exec(compile(converted.source, "layers.py", "exec"), namespace)  # the future is in force
    assert namespace["f"].__annotations__ == {"x": "Nope", "return": "int"}


@pytest.mark.parametrize(
    ("cells", "moved"),
    [
        (["x = 1\nfrom __future__ import annotations"], ["annotations"]),
        (["x = 1", "import os; from __future__ import annotations; y = 2  # why"], ["annotations"]),
        (["x = 1", "from __future__ import (\n    annotations,\n)  # c\nz = 3"], ["annotations"]),
        (
            ["from __future__ import annotations", "x = 1", "from __future__ import division"],
            ["annotations", "division"],
        ),
        (
            ['"""Doc."""\nfrom __future__ import annotations', "x = 1", "from __future__ import division"],
            ["annotations", "division"],
        ),
        (["s = 'é'; from __future__ import annotations"] * 2, ["annotations", "annotations"]),
    ],
)
def test_misplaced_future_imports_all_move_up(
    tmp_path: Path, cells: list[str], moved: list[str]
) -> None:
    assert not _compiles(_joined(cells))  # joined as they are, Python refuses them
    converted = _convert(tmp_path, *cells)
    assert _compiles(converted.source)
    header, body = converted.source.split("\n\n# %% [cell 1]\n")
    assert [line.split("  # ")[0] for line in header.splitlines()] == [
        f"from __future__ import {name}" for name in moved
    ]
    assert "from __future__" not in body.replace(f"{MOVED_PREFIX}from __future__", "")
    for number, line in enumerate(converted.source.splitlines(), start=1):
        where = converted.cell_line_of(number)
        if where is None:
            continue
        original = cells[where[0] - 1].splitlines()[where[1] - 1]
        if number <= len(moved):  # the header points at the line the import came from
            assert line.endswith(f"moved here from cell {where[0]}")
            assert "from __future__" in original
        elif line != original:  # the import where it stood: comments, or `pass` in it
            assert line.startswith(MOVED_PREFIX) or "pass" in line
            assert "__future__" in original or line == f"{MOVED_PREFIX}(continued)"


@pytest.mark.parametrize(
    "cells",
    [
        ["from __future__ import annotations\nimport os", "x = 1"],
        ['"""Doc."""', "# comment only", "from __future__ import annotations", "x = 1"],
        ["x = 1", "s = '''\nfrom __future__ import annotations\n'''"],
        ["x = 1", "def f():\n    return '__future__'"],
    ],
)
def test_well_placed_or_quoted_future_imports_stay(tmp_path: Path, cells: list[str]) -> None:
    converted = _convert(tmp_path, *cells)
    assert converted.source == _joined(cells)
    assert _compiles(converted.source)


def test_unknown_future_feature_points_at_its_cell(tmp_path: Path) -> None:
    converted = _convert(tmp_path, "x = 1", "y = 2\nfrom __future__ import braces")
    with pytest.raises(SyntaxError, match="not a chance") as info:
        compile(converted.source, "layers.py", "exec")
    assert converted.cell_line_of(info.value.lineno or 0) == (2, 2)


def test_broken_cell_still_reports_its_own_syntax_error(tmp_path: Path) -> None:
    converted = _convert(tmp_path, "x = 1", "from __future__ import annotations\ndef f(:\n    pass")
    with pytest.raises(SyntaxError) as info:
        compile(converted.source, "layers.py", "exec")
    assert converted.cell_line_of(info.value.lineno or 0) == (2, 2)


def test_huge_cells_are_not_parsed_whole(tmp_path: Path) -> None:
    """The grader parses only short logical lines: an AST costs ~500 bytes per character."""
    big = "y = 1\n" * 50_000
    converted = _convert(tmp_path, "x = 1", "from __future__ import annotations\n" + big)
    assert converted.source.startswith("from __future__ import annotations  # [autograder]")
    assert converted.cell_line_of(len(converted.source.splitlines())) == (2, 50_001)


_LINES = st.sampled_from(
    [
        "x = 1",
        "",
        "%matplotlib inline",
        "!ls",
        "y = (1,",
        "     2)",
        "s = '''",
        "%inside string",
        "'''",
        "np.zeros?",
        "z = 3  # why?",
        "from __future__ import annotations",
        "import os; from __future__ import annotations",
    ]
)


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.lists(st.lists(_LINES, min_size=1, max_size=8), min_size=1, max_size=5))
def test_every_kept_line_maps_to_its_cell_line(cells: list[list[str]]) -> None:
    from autograder.grading.notebooks import _convert, _convert_cell

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("\n".join(c)) for c in cells])
    converted = _convert(nb)
    stripped = {(s.cell, s.line) for s in converted.stripped}
    for number, line in enumerate(converted.source.splitlines(), start=1):
        origin = converted.cell_line_of(number)
        if origin is None:
            assert line == "" or line.startswith("# %% [cell ")
        elif STRIP_PREFIX in line:
            assert origin in stripped or line.endswith("(continued)")
        else:
            cell, at = origin
            if line != cells[cell - 1][at - 1]:  # a __future__ import moved to the top
                assert "from __future__ import annotations" in cells[cell - 1][at - 1]
                assert "[autograder] moved" in line or line == "import os; pass"
    # Jupyter compiles each cell on its own: where every cell parses, the module compiles
    try:
        for number, lines in enumerate(cells, start=1):
            ast.parse("\n".join(_convert_cell("\n".join(lines), number)[0]))
    except SyntaxError:
        return
    compile(converted.source, "layers.py", "exec")


# ---------------------------------------------------------------- source -> notebook

SAMPLE = '''\
"""Layers in numpy.

More text.
"""

from __future__ import annotations

import numpy as np

SCALE = 2  # module constant


# -------- section banner --------


@staticmethod
@property
def f(x):
    """Doc."""
    return x


class Net:
    def forward(self, x):
        return x
if __name__ == "__main__":
    print(f(1))
'''


def test_source_to_notebook_splits_into_cells() -> None:
    nb = source_to_notebook(SAMPLE, title="A1: layers")
    assert [(c.id, c.cell_type) for c in nb.cells] == [
        ("cell-0001", "markdown"),
        ("cell-0002", "code"),
        ("cell-0003", "code"),
        ("cell-0004", "code"),
        ("cell-0005", "code"),
        ("cell-0006", "code"),
    ]
    sources = [c.source for c in nb.cells]
    assert sources[0] == "# A1: layers\n\nLayers in numpy.\n\nMore text."
    assert sources[1] == "from __future__ import annotations\n\nimport numpy as np"
    assert sources[2] == "SCALE = 2  # module constant"
    assert sources[3].startswith("# -------- section banner --------\n\n\n@staticmethod\n@property")
    assert sources[4] == "class Net:\n    def forward(self, x):\n        return x"
    assert sources[5] == 'if __name__ == "__main__":\n    print(f(1))'
    assert all(c.execution_count is None and c.outputs == [] for c in nb.cells[1:])
    assert nb.metadata["kernelspec"]["name"] == "python3"
    nbformat.validate(nb)


def test_source_to_notebook_without_docstring_or_title() -> None:
    nb = source_to_notebook("import os\nx = os.sep\n")
    assert [c.cell_type for c in nb.cells] == ["code", "code"]
    assert source_to_notebook("").cells == []
    assert [c.source for c in source_to_notebook("", title="T").cells] == ["# T"]


def test_docstring_sharing_a_line_with_code_stays_code() -> None:
    nb = source_to_notebook('"""doc"""; import os\n')
    assert [(c.cell_type, c.source) for c in nb.cells] == [("code", '"""doc"""; import os')]


def test_notebook_bytes_are_deterministic(tmp_path: Path) -> None:
    first = notebook_bytes(source_to_notebook(SAMPLE))
    assert first == notebook_bytes(source_to_notebook(SAMPLE))
    assert first.endswith(b"}\n")
    write_notebook(source_to_notebook(SAMPLE), tmp_path / "x.ipynb")
    assert (tmp_path / "x.ipynb").read_bytes() == first
    assert json.loads(first)["cells"][0]["id"] == "cell-0001"


def _sample_modules() -> list[Path]:
    stdlib = ["textwrap.py", "dataclasses.py", "argparse.py", "json/encoder.py", "ast.py"]
    found = [STDLIB / name for name in stdlib]
    found += sorted((REPO / "autograder").rglob("*.py"))
    found += sorted((REPO / "solutions").glob("*/*.py"))
    found += sorted((REPO / "tests/fixtures/authoring/course/solutions").glob("*/*.py"))
    return [p for p in found if p.is_file()]


def _without_docstring(tree: ast.Module) -> ast.Module:
    if ast.get_docstring(tree) is not None:
        tree.body = tree.body[1:]
    return tree


@pytest.mark.parametrize(
    "module", _sample_modules(), ids=lambda p: p.relative_to(p.parents[1]).as_posix()
)
def test_round_trip_gives_equivalent_code(tmp_path: Path, module: Path) -> None:
    source = module.read_text(encoding="utf-8")
    path = tmp_path / f"{module.stem}.ipynb"
    write_notebook(source_to_notebook(source, title=module.stem), path)
    converted = notebook_to_source(path)

    assert converted.stripped == []
    compile(converted.source, path.name, "exec")
    assert ast.dump(ast.parse(converted.source)) == ast.dump(_without_docstring(ast.parse(source)))
    # every line but the docstring survives, in order (comments included)
    tree = ast.parse(source)
    doc_lines: set[int] = set()
    if ast.get_docstring(tree) is not None:
        doc_lines = set(range(tree.body[0].lineno, (tree.body[0].end_lineno or 0) + 1))
    kept = [
        line
        for number, line in enumerate(source.split("\n"), start=1)
        if line.strip() and number not in doc_lines
    ]
    back = [ln for ln in converted.source.split("\n") if ln.strip() and not _MARKER.fullmatch(ln)]
    assert back == kept


def test_sample_modules_are_found() -> None:
    assert len(_sample_modules()) >= 5


@pytest.mark.timeout(60)  # the old string pattern took hours on this (quadratic)
@pytest.mark.parametrize("tail", ["", "\\"])
def test_unclosed_json_string_is_scanned_in_one_pass(tmp_path: Path, tail: str) -> None:
    """An unclosed string full of escaped quotes: rejected as invalid, promptly."""
    path = tmp_path / "layers.ipynb"
    path.write_text('"' + '\\"' * 2_000_000 + tail)
    with pytest.raises(SubmissionError, match=r"layers\.ipynb is not a valid notebook"):
        notebook_to_source(path)
