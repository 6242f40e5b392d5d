"""Grader-side fixtures for the A6 hidden suite (never shipped to students).

One call of the course probe ``a6_run_project`` runs the student's whole project in the
worker (dvc repro, status, a parameter change and a second repro, the wandb logs, push
and pull) and returns plain data; every test judges its own part of that data here. The
run is made once per grading (the first test that needs it) and kept, failure included:
the tests after it get the same data, or the same message, without running it again.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from autograder.errors import StudentError

# The parameter the graders change, and its new value: train and evaluate must rerun,
# prepare must not.
CHANGE = {"section": "train", "key": "lr", "value": 0.0123}
STAGES = ("prepare", "train", "evaluate")
HELD_OUT_SEED = 90_210  # shuffles the digits the trained model is scored on


class ProjectRun:
    """The data of one run of the project, and the helpers that explain failures."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def step(self, name: str) -> dict[str, Any] | None:
        return next((s for s in self.data.get("steps", []) if s["name"] == name), None)

    def require_repro(self) -> None:
        """Fail the test, with DVC's own words, when `dvc repro` did not succeed."""
        repro = self.step("repro")
        if repro is None:
            pytest.fail("dvc repro did not run")
        if repro["returncode"] != 0:
            why = ("it was stopped after its time limit" if repro["returncode"] is None
                   else f"exit status {repro['returncode']}")
            pytest.fail(f"`dvc repro` in a clean copy of your project failed ({why}); "
                        f"its output ends with:\n{repro['output'][-1500:]}"
                        + network_hint(repro["output"]))
        if "repo_error" in self.data:
            pytest.fail(f"DVC's Python API could not read your project: {self.data['repo_error']}")

    def stages(self) -> dict[str, dict[str, Any]]:
        self.require_repro()
        return {s["name"]: s for s in self.data["repo"]["stages"]}

    def stage(self, name: str) -> dict[str, Any]:
        stages = self.stages()
        if name not in stages:
            pytest.fail(f"dvc.yaml has no stage named {name!r} (it has: "
                        f"{', '.join(sorted(stages)) or 'none'})")
        return stages[name]

    def runs(self) -> list[dict[str, Any]]:
        self.require_repro()
        if "wandb_error" in self.data:
            pytest.fail(f"your wandb run could not be read: {self.data['wandb_error']}")
        runs = self.data.get("wandb") or []
        if not runs:
            pytest.fail("no offline wandb run was found in wandb/ after `dvc repro`: call "
                        "wandb.init(...) in train.py (WANDB_MODE=offline is set for you)")
        return runs

    def first_run(self) -> dict[str, Any]:
        run = self.runs()[0]
        if not run["finished"]:
            pytest.fail(f"the wandb run {run['run']} was never finished (its log has no "
                        "exit record): call run.finish() at the end of train.py")
        return run


def network_hint(output: str) -> str:
    markers = ("Network is unreachable", "Name or service not known", "Temporary failure in "
               "name resolution", "Connection refused", "urlopen error", "api_key not configured",
               "Operation not permitted")
    if any(m in output for m in markers):
        return ("\n(The graders run your project without network access: stages must not "
                "download anything, and wandb must run offline (WANDB_MODE=offline).)")
    return ""


@pytest.fixture(scope="session")
def _project_cache() -> dict[str, Any]:
    return {}


@pytest.fixture
def project(student: Any, _project_cache: dict[str, Any],
            digits: tuple[np.ndarray, np.ndarray]) -> ProjectRun:
    """The project's run (made by the first test that asks for it); the trained model
    scores every digit (the grader picks the test part itself)."""
    if "data" not in _project_cache and "error" not in _project_cache:
        try:
            _project_cache["data"] = student.probe("a6_run_project", CHANGE, digits[0])
        except StudentError as exc:
            _project_cache["error"] = exc
    if "error" in _project_cache:
        exc = _project_cache["error"]
        pytest.fail(f"running your project failed: {exc}")
    return ProjectRun(_project_cache["data"])


def covers(params: list[str], section: str, key: str) -> bool:
    """True if a stage's params entries (``train`` or ``train.lr``) cover ``section.key``."""
    return any(p in (section, f"{section}.{key}", "*") for p in params)


def split(n: int, seed: int, test_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """The README's split: (train indices, test indices) in the order of the permutation."""
    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(round(test_fraction * n))
    return perm[n_test:], perm[:n_test]


def mlp_forward(state: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """The README's MLP (Linear - ReLU - Linear) from its state dict, in float64: the
    weights and biases in registration order."""
    weights = [v for v in state.values() if v.ndim == 2]
    biases = [v for v in state.values() if v.ndim == 1]
    shapes = [tuple(v.shape) for v in state.values()]
    if len(weights) != 2 or len(biases) != 2:
        pytest.fail(f"the model's parameters have shapes {shapes}; expected two Linear layers")
    (w1, w2), (b1, b2) = weights, biases
    h = np.maximum(np.asarray(X, np.float64) @ w1.T.astype(np.float64) + b1, 0)
    return h @ w2.T.astype(np.float64) + b2


def log_softmax(s: np.ndarray) -> np.ndarray:
    s = np.asarray(s, np.float64)
    return s - np.logaddexp.reduce(s, axis=1, keepdims=True)


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """All digits, in scikit-learn's order (the grader's own copy)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data.astype(np.float32) / 16.0, d.target.astype(np.int64)
