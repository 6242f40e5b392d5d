"""The data split and the trained model, judged with the grader's own copy of the digits."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import log_softmax, split

pytestmark = pytest.mark.tags("model")


@pytest.mark.points(2)
def test_prepare_writes_the_readmes_split(project, digits):
    """data/prepared/{train,test}.npz hold the README's split for prepare's seed and fraction"""
    project.require_repro()
    X, y = digits
    p = project.data["repo"]["params"]["params.yaml"]["prepare"]
    train_idx, test_idx = split(len(y), int(p["seed"]), float(p["test_fraction"]))
    for name, idx in (("train", train_idx), ("test", test_idx)):
        got = project.data["files"].get(f"data/prepared/{name}.npz")
        assert isinstance(got, dict), f"data/prepared/{name}.npz: {got or 'missing'}"
        assert set(got) >= {"X", "y"}, f"data/prepared/{name}.npz holds {sorted(got)}"
        assert got["X"].shape == (len(idx), 64) and got["X"].dtype == np.float32, (
            f"{name}.npz X is {got['X'].dtype} {got['X'].shape}; expected float32 "
            f"({len(idx)}, 64)")
        assert got["y"].dtype == np.int64, f"{name}.npz y is {got['y'].dtype}, not int64"
        np.testing.assert_array_equal(got["y"], y[idx], err_msg=f"{name}.npz y")
        np.testing.assert_allclose(got["X"], X[idx], atol=1e-6, err_msg=f"{name}.npz X")


def _test_part(project, digits):
    project.require_repro()
    if "scores_error" in project.data:
        pytest.fail(f"the trained model could not be loaded: {project.data['scores_error']}")
    scores = np.asarray(project.data["scores"], np.float64)
    X, y = digits
    p = project.data["repo"]["params"]["params.yaml"]["prepare"]
    _, test_idx = split(len(y), int(p["seed"]), float(p["test_fraction"]))
    assert scores.shape == (len(y), 10), f"the model's scores have shape {scores.shape}"
    return scores[test_idx], y[test_idx]


@pytest.mark.points(2)
def test_model_classifies_the_test_part(project, digits):
    """The DVC-tracked model classifies the test digits with accuracy >= 0.85"""
    scores, y = _test_part(project, digits)
    acc = float((scores.argmax(1) == y).mean())
    assert acc >= 0.85, f"test accuracy {acc:.3f} (computed by the graders); needs >= 0.85"


def test_metrics_json_matches_the_model(project, digits):
    """metrics.json's test_accuracy and test_loss are the model's on the test part"""
    scores, y = _test_part(project, digits)
    shown = project.data["repo"]["metrics"].get("metrics.json") or {}
    acc = float((scores.argmax(1) == y).mean())
    loss = float(-log_softmax(scores)[np.arange(len(y)), y].mean())
    assert shown.get("test_accuracy") == pytest.approx(acc, abs=1e-9), (
        f"metrics.json test_accuracy = {shown.get('test_accuracy')}; the model's is {acc}")
    assert shown.get("test_loss") == pytest.approx(loss, rel=1e-4, abs=1e-6), (
        f"metrics.json test_loss = {shown.get('test_loss')}; the model's is {loss}")
