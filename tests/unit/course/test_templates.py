"""Template generation: solution stripping, template files, drift checks, names."""

from __future__ import annotations

import ast
import os
import shutil
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autograder.course.templates import (
    check_template,
    generate_template,
    resolve_assignment,
    strip_solutions,
    write_template,
)
from autograder.errors import ConfigError
from autograder.grading.notebooks import notebook_to_source

COURSE = Path(__file__).resolve().parents[2] / "fixtures" / "authoring" / "course"
NAME = "a9_tiny"


@pytest.fixture
def course(tmp_path: Path) -> Path:
    """A writable copy of the fixture course without its generated template."""
    root = tmp_path / "course"
    shutil.copytree(COURSE, root, ignore=shutil.ignore_patterns("assignments"))
    return root


# ---------------------------------------------------------------- strip_solutions


def test_strip_replaces_each_block_with_a_stub() -> None:
    source = (
        "def f(x):\n"
        '    """Doc."""\n'
        "    # BEGIN SOLUTION\n"
        "    y = x + 1\n"
        "    return y\n"
        "    # END SOLUTION\n"
        "\n"
        "\n"
        "def g():\n"
        "    # BEGIN SOLUTION hint: use a list\n"
        "    return []\n"
        "    # END SOLUTION\n"
    )
    assert strip_solutions(source, filename="ops.py") == (
        "def f(x):\n"
        '    """Doc."""\n'
        '    raise NotImplementedError("TODO: f")\n'
        "\n"
        "\n"
        "def g():\n"
        "    # Hint: use a list\n"
        '    raise NotImplementedError("TODO: g")\n'
    )


def test_strip_names_methods_and_nested_functions() -> None:
    source = (
        "class Net:\n"
        "    def forward(self, x):\n"
        "        def helper(v):\n"
        "            # BEGIN SOLUTION\n"
        "            return v\n"
        "            # END SOLUTION\n"
        "        # BEGIN SOLUTION\n"
        "        return helper(x)\n"
        "        # END SOLUTION\n"
    )
    stripped = strip_solutions(source, filename="net.py")
    assert 'raise NotImplementedError("TODO: Net.forward.helper")' in stripped
    assert 'raise NotImplementedError("TODO: Net.forward")' in stripped


def test_strip_handles_blocks_in_loops_and_multiline_signatures() -> None:
    source = (
        "async def f(\n"
        "    xs,\n"
        "):\n"
        "    total = 0\n"
        "    for x in xs:\n"
        "        # BEGIN SOLUTION\n"
        "        total += x\n"
        "        # END SOLUTION\n"
        "    return total\n"
    )
    stripped = strip_solutions(source, filename="loop.py")
    assert '        raise NotImplementedError("TODO: f")\n    return total\n' in stripped


def test_strip_without_markers_is_identity_and_normalizes_crlf() -> None:
    assert strip_solutions("x = 1\n", filename="a.py") == "x = 1\n"
    crlf = "def f():\r\n    # BEGIN SOLUTION\r\n    return 1\r\n    # END SOLUTION\r\n"
    assert strip_solutions(crlf, filename="a.py") == (
        'def f():\n    raise NotImplementedError("TODO: f")\n'
    )


def _body(*lines: str) -> str:
    return "def f(x):\n    y = 1\n" + "".join(f"    {line}\n" for line in lines)


@pytest.mark.parametrize(
    ("source", "line", "fix"),
    [
        (_body("# BEGIN SOLUTION", "# BEGIN SOLUTION", "# END SOLUTION"), 4, "cannot nest"),
        (_body("# END SOLUTION"), 3, "without a '# BEGIN SOLUTION'"),
        (_body("# BEGIN SOLUTION", "return x"), 3, "never closed"),
        (_body("# BEGIN SOLUTION", "# END SOLUTION extra"), 4, "nothing may follow"),
        (_body("# BEGIN SOLUTION please", "# END SOLUTION"), 3, "hint: ..."),
        (_body("# BEGIN SOLUTIONS", "# END SOLUTION"), 3, "hint: ..."),
        (_body("# begin solution", "# END SOLUTION"), 3, "looks like a solution marker"),
        (_body("# END_SOLUTION"), 3, "looks like a solution marker"),
        ("# BEGIN SOLUTION\nx = 1\n# END SOLUTION\n", 1, "not inside a function body"),
        ("class A:\n    # BEGIN SOLUTION\n    x = 1\n    # END SOLUTION\n", 2, "function body"),
        ("def f(:\n    pass\n", 1, "does not compile"),
    ],
)
def test_strip_errors_name_file_line_and_fix(source: str, line: int, fix: str) -> None:
    with pytest.raises(ConfigError) as info:
        strip_solutions(source, filename="solutions/a1/ops.py")
    assert f"solutions/a1/ops.py:{line}:" in str(info.value)
    assert fix in str(info.value)


def test_strip_rejects_a_stub_that_would_not_compile() -> None:
    source = (
        "def f(x):\n    y = 1\n        # BEGIN SOLUTION\n    return y\n        # END SOLUTION\n"
    )
    with pytest.raises(ConfigError, match=r"ops\.py: the template does not compile.*line 3"):
        strip_solutions(source, filename="ops.py")


_TOKENS = st.sampled_from(["# BEGIN SOLUTION", "# END SOLUTION", "x = x + 1"])


@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.lists(_TOKENS, max_size=12))
def test_strip_accepts_exactly_the_balanced_unnested_sequences(tokens: list[str]) -> None:
    source = _body(*tokens) + "    return x\n"
    markers = [t for t in tokens if t.startswith("#")]
    balanced = markers == ["# BEGIN SOLUTION", "# END SOLUTION"] * (len(markers) // 2)
    if not balanced:
        with pytest.raises(ConfigError, match=r"^gen\.py:\d+: "):
            strip_solutions(source, filename="gen.py")
        return
    stripped = strip_solutions(source, filename="gen.py")
    compile(stripped, "gen.py", "exec")
    assert "SOLUTION" not in stripped
    assert stripped.count('raise NotImplementedError("TODO: f")') == len(markers) // 2
    outside, inside = 0, False
    for token in tokens:
        inside = {"# BEGIN SOLUTION": True, "# END SOLUTION": False}.get(token, inside)
        outside += token == "x = x + 1" and not inside
    assert stripped.count("x = x + 1") == outside


# ---------------------------------------------------------------- generate_template


def test_generate_template_files() -> None:
    files = generate_template(COURSE, NAME)
    assert sorted(p.as_posix() for p in files) == [
        "README.md",
        "assignment.toml",
        "data.py",
        "ops.ipynb",
        "ops.py",
        "stats.ipynb",
        "stats.py",
        "tests/test_ops.py",
    ]
    solution = COURSE / "solutions" / NAME
    assert files[Path("data.py")] == (solution / "data.py").read_bytes()
    assert files[Path("README.md")] == (solution / "README.md").read_bytes()
    public = COURSE / "reference_tests" / NAME / "public" / "test_ops.py"
    assert files[Path("tests/test_ops.py")] == public.read_bytes()
    ops = files[Path("ops.py")].decode()
    assert "np.maximum(x, 0)" not in ops and "# Hint: use np.maximum" in ops
    assert 'raise NotImplementedError("TODO: Doubler.__call__")' in ops
    compile(ops, "ops.py", "exec")
    everything = b"".join(files.values())
    assert b"SOLUTION" not in everything and b"not for students" not in everything
    assert b"held_out_seed" not in everything and b"hidden" not in everything


def test_generated_config_is_the_public_part() -> None:
    files = generate_template(COURSE, NAME)
    public = tomllib.loads(files[Path("assignment.toml")].decode())
    source = tomllib.loads((COURSE / "reference_tests" / NAME / "assignment.toml").read_text())
    assert public == {"assignment": source["assignment"], "limits": source["limits"]}


def test_report_and_environment_reach_the_students_config(course: Path) -> None:
    """`check` in the student's folder reads [report] categories and [environment] there."""
    path = course / "reference_tests" / NAME / "assignment.toml"
    path.write_text(path.read_text() + '\n[report]\ncategories = ["basics"]\n\n'
                    '[environment]\nWANDB_MODE = "offline"\n')
    public = tomllib.loads(generate_template(course, NAME)[Path("assignment.toml")].decode())
    assert public["report"] == {"categories": ["basics"]}
    assert public["environment"] == {"WANDB_MODE": "offline"}
    assert "grading" not in public  # held_out_seed stays hidden


def test_notebook_twin_converts_back_to_the_template(tmp_path: Path) -> None:
    files = generate_template(COURSE, NAME)
    path = tmp_path / "ops.ipynb"
    path.write_bytes(files[Path("ops.ipynb")])
    converted = notebook_to_source(path)
    template = ast.parse(files[Path("ops.py")].decode())
    template.body = template.body[1:]  # the docstring became the markdown cell
    assert ast.dump(ast.parse(converted.source)) == ast.dump(template)


def test_generation_is_deterministic() -> None:
    assert generate_template(COURSE, NAME) == generate_template(COURSE, NAME)


def test_committed_fixture_template_is_in_sync() -> None:
    # the golden: regenerate with UPDATE_GOLDENS=1 after changing generation on purpose
    if os.environ.get("UPDATE_GOLDENS"):
        write_template(COURSE, NAME)
    assert check_template(COURSE, NAME) == []


def test_check_template_reports_drift(course: Path) -> None:
    write_template(course, NAME)
    folder = course / "assignments" / NAME
    (folder / "ops.py").write_text("edited = True\n")
    (folder / "stats.ipynb").unlink()
    (folder / "scratch.py").write_text("")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "ops.cpython-311.pyc").write_bytes(b"")
    (folder / "README.md").write_bytes((folder / "README.md").read_bytes().replace(b"\n", b"\r\n"))
    report = check_template(course, NAME)
    first, diff = report[0].split("\n", 1)
    assert first == f"assignments/{NAME}/ops.py differs from solutions/{NAME}; " \
                    f"run `autograder template {NAME}`"
    assert "\n  -edited = True\n" in "\n" + diff  # the diff shows what changed
    assert report[1:] == [
        f"assignments/{NAME}/scratch.py is not generated from solutions/{NAME}; "
        f"delete it or run `autograder template {NAME}`",
        f"assignments/{NAME}/stats.ipynb is missing; run `autograder template {NAME}`",
    ]


def test_check_template_without_template_folder(course: Path) -> None:
    report = check_template(course, NAME)
    assert len(report) == 8 and all("is missing" in line for line in report)


def test_write_template_is_idempotent_and_removes_stale_files(course: Path) -> None:
    assert len(write_template(course, NAME)) == 8
    assert write_template(course, NAME) == []
    folder = course / "assignments" / NAME
    (folder / "old" / "deep").mkdir(parents=True)
    (folder / "old" / "deep" / "stale.py").write_text("")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "x.pyc").write_bytes(b"")
    (folder / "ops.py").write_text("edited\n")
    assert write_template(course, NAME) == [Path("ops.py"), Path("old/deep/stale.py")]
    assert not (folder / "old").exists()
    assert (folder / "__pycache__" / "x.pyc").exists()
    assert check_template(course, NAME) == []


def _config(course: Path, text: str) -> None:
    (course / "reference_tests" / NAME / "assignment.toml").write_text(text)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("[assignment\n", "assignment.toml cannot be read"),
        ("[limits]\nthreads = 1\n", "has no [assignment] table"),
        ("[assignment]\nmodules = 'ops'\n", "modules = 'ops'; give a non-empty list"),
        ("[assignment]\nmodules = []\n", "modules = []"),
        ("[assignment]\nmodules = ['ops.py']\n", 'without ".py"'),
        ("[assignment]\nmodules = ['ops', 'ops']\n", "distinct"),
        ("[assignment]\nmodules = ['ops']\nsupport = ['../x.py']\n", "support = ['../x.py']"),
        ("[assignment]\nmodules = ['ops']\nsupport = ['/etc/passwd']\n", "relative to"),
        ("[assignment]\nmodules = ['ops']\nsupport = [1]\n", "support = [1]"),
        ("[assignment]\nmodules = ['ops']\nsupport = ['ops.py']\n", "both as module and"),
        ("[assignment]\nmodules = ['nope']\n", f"solutions/{NAME}/nope.py is missing"),
        ("[assignment]\nmodules = ['ops']\nsupport = ['gone.py']\n", "gone.py is missing"),
        ("[assignment]\nmodules = ['ops']\ndue = 2024-01-01\n", "assignment.due = "),
    ],
)
def test_config_errors(course: Path, config: str, message: str) -> None:
    _config(course, config)
    with pytest.raises(ConfigError) as info:
        generate_template(course, NAME)
    assert message in str(info.value)


def test_missing_config_readme_and_leaking_markers(course: Path) -> None:
    solution = course / "solutions" / NAME
    (solution / "README.md").unlink()
    with pytest.raises(ConfigError, match=r"README\.md is missing \(the students' task"):
        generate_template(course, NAME)
    (solution / "README.md").write_text("# Task\n")
    (solution / "data.py").write_text("x = 1\n# BEGIN SOLUTION\n")
    with pytest.raises(ConfigError, match=r"data\.py:2: has a solution marker.*support file"):
        generate_template(course, NAME)
    (solution / "data.py").write_text("x = 1\n")
    public = course / "reference_tests" / NAME / "public" / "test_ops.py"
    public.write_text("# END SOLUTION\n")
    with pytest.raises(ConfigError, match=r"public/test_ops\.py:1: .*public test"):
        generate_template(course, NAME)
    (course / "reference_tests" / NAME / "assignment.toml").unlink()
    with pytest.raises(ConfigError, match=r"assignment\.toml is missing"):
        generate_template(course, NAME)


def test_solution_errors_name_the_solution_file(course: Path) -> None:
    (course / "solutions" / NAME / "stats.py").write_text(
        "def mean(x):\n    # BEGIN SOLUTION\n    return x\n"
    )
    with pytest.raises(ConfigError, match=rf"^solutions/{NAME}/stats\.py:2: .*never closed"):
        generate_template(course, NAME)


# ---------------------------------------------------------------- names


def _names_tree(root: Path, *names: str, twin: bool = True) -> None:
    for name in names:
        (root / "solutions" / name).mkdir(parents=True)
        if twin:
            (root / "reference_tests" / name).mkdir(parents=True)


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("a1", "a1_numpy_nn"),
        ("a1_numpy_nn", "a1_numpy_nn"),
        ("solutions/a1_numpy_nn/", "a1_numpy_nn"),
        ("assignments\\a2_torch", "a2_torch"),
    ],
)
def test_resolve_assignment(tmp_path: Path, key: str, name: str) -> None:
    _names_tree(tmp_path, "a1_numpy_nn", "a2_torch")
    assert resolve_assignment(tmp_path, key) == name


def test_resolve_assignment_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown assignment 'a1'; known assignments: none"):
        resolve_assignment(tmp_path, "a1")
    _names_tree(tmp_path, "a1_numpy_nn", "a2_torch", "a2_gan")
    with pytest.raises(ConfigError, match=r"'a7'; known assignments: a1_numpy_nn, a2_gan, a2_"):
        resolve_assignment(tmp_path, "a7")
    with pytest.raises(ConfigError, match=r"'a2' is ambiguous \(a2_gan, a2_torch\)"):
        resolve_assignment(tmp_path, "a2")


def test_generated_notebooks_carry_the_fingerprints_of_both_twins(tmp_path: Path) -> None:
    """What lets a grading ignore a twin left as generated (see grading.submission)."""
    import json

    from autograder.grading.notebooks import source_sha256

    files = generate_template(COURSE, "a9_tiny")
    record = json.loads(files[Path("ops.ipynb")])["metadata"]["autograder"]["template"]
    assert record["py_sha256"] == source_sha256(files[Path("ops.py")].decode())
    (tmp_path / "ops.ipynb").write_bytes(files[Path("ops.ipynb")])
    assert notebook_to_source(tmp_path / "ops.ipynb").unchanged_from_template()


@pytest.mark.parametrize("name", ["a1_numpy_nn", "a2_pytorch", "a3_cnn_seg"])
def test_course_readmes_tell_students_how_to_keep_cells_out_of_grading(name: str) -> None:
    readme = (Path(__file__).resolve().parents[3] / "assignments" / name / "README.md").read_text()
    assert "`skip-grading`" in readme and "`# autograder: skip`" in readme
    assert "the twin you leave untouched is ignored" in readme
