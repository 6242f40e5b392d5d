"""The worker's import hook. Each check runs in a fresh interpreter: the hook changes
sys.meta_path and sys.modules, which this test process must keep."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from autograder.sandbox.import_guard import forbidden_match, refusal

REPO = Path(__file__).resolve().parents[3]


def run(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_match_is_the_name_or_a_parent_never_a_prefix() -> None:
    assert forbidden_match("scipy", ["torch", "scipy"]) == "scipy"
    assert forbidden_match("scipy.special._ufuncs", ["scipy"]) == "scipy"
    assert forbidden_match("torchvision", ["torch"]) is None
    assert forbidden_match("scipy", ["scipy.special"]) is None


def test_refusal_names_the_module_and_the_policy() -> None:
    text = refusal("scipy.special", "scipy", ["torch", "scipy"])
    assert text.startswith("this assignment does not allow importing scipy.special (part of "
                           "scipy); it forbids torch, scipy.")


def test_installed_guard_refuses_every_way_of_importing() -> None:
    out = run("""
        import importlib, sys
        from autograder.sandbox import import_guard
        import_guard.install(["json", "xml.dom"])
        assert isinstance(sys.meta_path[0], import_guard.ImportGuard)
        tries = {
            "import": "import json",
            "submodule": "import json.decoder",
            "from": "from json import loads",
            "dotted policy": "import xml.dom.minidom",
            "__import__": "__import__('json')",
            "importlib": "importlib.import_module('json.encoder')",
        }
        for label, code in tries.items():
            try:
                exec(code, {"importlib": importlib})
            except ImportError as exc:
                print(label, "->", exc)
            else:
                print(label, "-> IMPORTED")
        import xml.sax  # the rest of xml is allowed
        print("xml.sax ok")
    """)
    assert "IMPORTED" not in out
    assert "import -> this assignment does not allow importing json; it forbids json, xml.dom." in out
    # a submodule's parent is imported first: that is what is refused
    assert "submodule -> this assignment does not allow importing json; it forbids" in out
    assert "importlib -> this assignment does not allow importing json; it forbids" in out
    assert "dotted policy -> this assignment does not allow importing xml.dom" in out
    assert "xml.sax ok" in out


def test_loaded_modules_are_dropped_so_the_cache_does_not_answer() -> None:
    out = run("""
        import sys
        import json, json.decoder  # what a preload or the grader imported
        from autograder.sandbox import import_guard
        import_guard.install(["json"])
        print(sorted(n for n in sys.modules if n == "json" or n.startswith("json.")))
        try:
            import json.decoder
        except ImportError as exc:
            print("refused:", exc.name)
    """)
    assert out.splitlines() == ["[]", "refused: json"]  # the parent comes first


def test_nothing_forbidden_installs_nothing() -> None:
    out = run("""
        import sys
        from autograder.sandbox import import_guard
        before = list(sys.meta_path)
        assert import_guard.install([]) is None and sys.meta_path == before
        with import_guard.TemporaryGuard(()).active():
            assert sys.meta_path == before
        print("ok")
    """)
    assert out.strip() == "ok"


def test_temporary_guard_gives_the_grader_its_modules_back() -> None:
    out = run("""
        import sys
        import json
        from autograder.sandbox import import_guard
        before = list(sys.meta_path)
        grader_json = sys.modules["json"]
        guard = import_guard.TemporaryGuard(["json"])
        with guard.active():
            print("inside", "json" in sys.modules)
            try:
                import json as j
            except ImportError:
                print("refused")
        print("after", sys.modules["json"] is grader_json, sys.meta_path == before)
        import json.tool  # the grader imports freely again, between calls
        with guard.active():  # the cached scan must notice json.tool
            print("inside", sorted(n for n in sys.modules if n.startswith("json")))
            try:
                from json.tool import main
            except ImportError:
                print("refused")
        print("after", "json.tool" in sys.modules)
    """)
    assert out.splitlines() == ["inside False", "refused", "after True True",
                                "inside []", "refused", "after True"]


def test_temporary_guard_removed_by_student_code_leaves_nothing_behind() -> None:
    out = run("""
        import sys
        from autograder.sandbox import import_guard
        guard = import_guard.TemporaryGuard(["json"])
        with guard.active():
            sys.meta_path.remove(guard.guard)  # a bypass: then json imports
            import json
        print("json" in sys.modules, guard.guard in sys.meta_path)
    """)
    assert out.strip() == "False False"


@pytest.mark.parametrize("forbidden", [["sklearn"], []])
def test_an_allowed_torch_still_converts_tensors(forbidden: list[str]) -> None:
    """The codec finds torch through sys.modules: a guard for other packages keeps it."""
    pytest.importorskip("torch")
    out = run(f"""
        import torch
        from autograder.sandbox import codec, import_guard
        import_guard.install({forbidden!r})
        data = codec.encode({{"t": torch.arange(3.0)}})
        print(codec.decode(data)["t"].tolist())
    """)
    assert out.strip() == "[0.0, 1.0, 2.0]"


def test_a_forbidden_torch_is_gone_for_the_codec_too() -> None:
    pytest.importorskip("torch")
    out = run("""
        import sys
        import torch
        t = torch.arange(3.0)
        from autograder.sandbox import import_guard
        import_guard.install(["torch"])
        print("torch" in sys.modules)
    """)
    assert out.strip() == "False"


def test_a_lookup_is_not_an_import() -> None:
    """importlib.util.find_spec only asks whether a module exists (torch._dynamo asks for
    tensorflow and sklearn when it loads): it must not raise; importing stays refused."""
    out = run("""
        import importlib.util
        from autograder.sandbox import import_guard
        import_guard.install(["csv"])
        print("spec", importlib.util.find_spec("csv") is not None)
        try:
            import csv
        except ImportError as exc:
            print("import ->", exc)
    """)
    assert "spec True" in out
    assert "import -> this assignment does not allow importing csv" in out
