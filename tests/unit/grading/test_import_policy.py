"""The grader's static import check: every import form, notebooks mapped to their cells,
and what the student reads (file, line, the fix)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from autograder.config import AssignmentConfig
from autograder.grading.import_policy import (
    MAX_PARSED_CHARS,
    Violation,
    describe,
    scan,
    scan_module,
)
from autograder.grading.notebooks import notebook_to_source
from autograder.grading.submission import prepare_submission

FORBIDDEN = ("torch", "scipy", "sklearn")


@pytest.mark.parametrize("line", [
    "import torch",
    "import numpy, torch",
    "import torch as th",
    "import torch.nn",
    "import torch.nn.functional as F",
    "from torch import nn",
    "from torch.nn import functional",
    "from scipy.special import expit as sigmoid",
    "from sklearn import *",
    "def f():\n    import torch",  # inside a function: found without running it
    "try:\n    import torch\nexcept ImportError:\n    pass",
    "__import__('torch')",
    "__import__(name='torch.nn')",
    "import builtins\nbuiltins.__import__('torch')",
    "from builtins import __import__ as imp\nimp('torch')",
    "import importlib\nimportlib.import_module('torch')",
    "import importlib\nimportlib.__import__('scipy.linalg')",
    "import importlib.util\nimportlib.import_module('torch')",
    "import importlib as il\nil.import_module('torch')",
    "from importlib import import_module\nimport_module('sklearn.datasets')",
    "from importlib import import_module as load\nload('torch')",
    "x = [__import__('torch') for _ in range(1)]",
])
def test_every_import_form_is_found(line: str) -> None:
    hits = scan(line + "\n", FORBIDDEN)
    # reported at the (one) line that names the forbidden package
    at = [n for n, text in enumerate(line.splitlines(), 1) if any(f in text for f in FORBIDDEN)]
    assert [n for n, _ in hits] == at, hits
    assert hits[0][1].split(".")[0] in FORBIDDEN


@pytest.mark.parametrize("line", [
    "import numpy as np",
    "import torchvision",  # another package: "torch" does not match "torchvision"
    "import scipyx",
    "from . import torch",  # relative: the student's own module
    "from .torch import x",
    "from .. import scipy",
    "import importlib\nname = 'torch'\nimportlib.import_module(name)",  # not literal: the hook's job
    "import importlib\nimportlib.import_module('to' + 'rch')",
    "import importlib\nimportlib.import_module('.torch', 'pkg')",
    "__import__(f'{x}')",
    "x = 'import torch'  # a string, not an import",
    "# import torch",
    "def import_module(x): pass\nimport_module('torch')",  # not importlib's
    "obj.import_module('torch')",
])
def test_what_is_not_a_forbidden_import(line: str) -> None:
    assert scan(line + "\n", FORBIDDEN) == []


def test_dotted_forbidden_names_match_the_module_and_below_only() -> None:
    source = ("import scipy\nimport scipy.special\nfrom scipy import special\n"
              "from scipy.special import expit\nimport scipy.linalg\n")
    assert scan(source, ("scipy.special",)) == [
        (2, "scipy.special"), (3, "scipy.special"), (4, "scipy.special")]


def test_one_line_reports_each_package_once_with_the_first_name() -> None:
    assert scan("from scipy import special, linalg\n", FORBIDDEN) == [(1, "scipy")]
    assert scan("import torch, scipy.special\n", FORBIDDEN) == [(1, "scipy.special"), (1, "torch")]


def test_unparsable_source_and_empty_policy_yield_nothing() -> None:
    assert scan("import torch\ndef f(:\n", FORBIDDEN) == []  # the worker reports the SyntaxError
    assert scan("import torch\n", ()) == []


def test_a_source_too_deep_for_the_parser_does_not_break_the_grader() -> None:
    assert scan("import torch\nx = " + "-" * 200_000 + "1\n", FORBIDDEN) == []


def test_large_sources_are_scanned_line_by_line() -> None:
    """Past MAX_PARSED_CHARS only lines that name a package are parsed (ast would take
    gigabytes of the grader's memory): one-line imports are still found at their line."""
    data = "x = [1, 2, 3]\n" * (MAX_PARSED_CHARS // 10)
    source = (data + "def f():\n    import scipy.special as sp  # and torch\n"
              + "from torch import (\n    nn)\n" + "y = 'torch'\n")
    line = data.count("\n") + 2
    assert len(source) > MAX_PARSED_CHARS
    # the import split over lines is the worker hook's to refuse
    assert scan(source, FORBIDDEN) == [(line, "scipy.special")]
    assert scan(data, FORBIDDEN) == []


def _notebook(path: Path, *cells: str) -> Path:
    nbformat.write(nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Layers"), *map(nbformat.v4.new_code_cell, cells)]), path)
    return path


def test_notebook_lines_are_mapped_to_their_cells(tmp_path: Path) -> None:
    nb = notebook_to_source(_notebook(tmp_path / "layers.ipynb", "import numpy as np",
                                      "%matplotlib inline\nx = 1\nimport scipy.special"))
    found = scan_module(nb.source, FORBIDDEN, file="layers.ipynb", notebook=nb)
    assert found == [Violation("layers.ipynb", 3, "scipy.special", cell=3)]
    assert found[0].where == "layers.ipynb, cell 3, line 3"
    assert found[0].to_json() == {"file": "layers.ipynb", "line": 3, "module": "scipy.special",
                                  "cell": 3}


def test_the_message_names_file_line_module_and_fix() -> None:
    one = describe([Violation("layers.py", 3, "scipy.special")], "a1", FORBIDDEN)
    assert one.startswith("layers.py, line 3: imports scipy.special, which assignment a1 "
                          "does not allow. Remove the import")
    assert "a1 forbids torch, scipy, sklearn" in one
    many = describe([Violation("m.py", n, "torch") for n in range(1, 8)], "a1", FORBIDDEN)
    assert many.startswith("m.py, line 1: imports torch; m.py, line 2: imports torch;")
    assert "m.py, line 6" not in many and "; and 2 more. Assignment a1 does not allow these" in many


CONFIG = AssignmentConfig(id="p1", title="p", modules=("layers", "mlp", "train"),
                          forbidden_imports=FORBIDDEN)


def test_prepared_submission_refuses_the_modules_that_import_forbidden_packages(tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "layers.py").write_text("import numpy as np\n\nimport scipy.special\n")
    _notebook(sub / "mlp.ipynb", "import layers", "def f():\n    import torch as th\n    return th")
    (sub / "train.py").write_text("import importlib\nname = 'torch'\nm = importlib.import_module(name)\n")
    prepared = prepare_submission(sub, CONFIG, None, tmp_path / "out")
    assert [v.to_json() for v in prepared.import_violations] == [
        {"file": "layers.py", "line": 3, "module": "scipy.special"},
        {"file": "mlp.ipynb", "line": 2, "module": "torch", "cell": 3}]
    assert prepared.violations_json() == [v.to_json() for v in prepared.import_violations]
    kind, message = prepared.module_problem("layers") or ("", "")
    assert kind == "ImportError"
    assert message.startswith("layers.py, line 3: imports scipy.special, which assignment p1 "
                              "does not allow")
    assert (prepared.module_problem("mlp") or ("", ""))[1].startswith(
        "mlp.ipynb, cell 3, line 2: imports torch")
    assert prepared.module_problem("train") is None  # a computed name: the worker refuses it
    report = prepared.report()
    assert "Problem with module layers: layers.py, line 3: imports scipy.special" in report
    assert "Problem with module mlp: mlp.ipynb, cell 3, line 2: imports torch" in report
    # the file graded is still the student's: nothing was rewritten
    assert (tmp_path / "out" / "layers.py").read_text() == "import numpy as np\n\nimport scipy.special\n"


def test_support_files_are_not_scanned(tmp_path: Path) -> None:
    """The official data.py may use sklearn; only the student's modules are checked."""
    support = tmp_path / "support"
    support.mkdir()
    (support / "data.py").write_text("from sklearn.datasets import load_digits\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "layers.py").write_text("import numpy\n")
    (sub / "data.py").write_text("import torch\n")  # replaced by the official copy
    config = AssignmentConfig(id="p1", title="p", modules=("layers",), support=("data.py",),
                              forbidden_imports=FORBIDDEN)
    prepared = prepare_submission(sub, config, support, tmp_path / "out")
    assert prepared.import_violations == [] and prepared.problems == {}
