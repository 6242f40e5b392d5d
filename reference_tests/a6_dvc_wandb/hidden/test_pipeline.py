"""The DVC pipeline: `dvc repro` from a clean copy, and the stages, deps, outs, params and
metrics DVC's Python API reads from dvc.yaml."""

from __future__ import annotations

import pytest
from conftest import STAGES, covers

pytestmark = pytest.mark.tags("pipeline")

TRAIN_KEYS = ("seed", "hidden", "epochs", "lr", "batch_size")


@pytest.mark.points(2)
def test_repro_runs_the_three_stages_in_order(project):
    """`dvc repro` in a clean copy runs prepare, train and evaluate, in that order"""
    project.require_repro()
    assert project.data["ran"] == list(STAGES), (
        f"`dvc repro` ran {project.data['ran']}; expected the stages prepare, train, evaluate "
        "in that order (each needs the previous stage's outputs as deps)")


def test_prepare_stage(project):
    """prepare: runs prepare.py, depends on prepare.py, digits.py and the prepare params, outputs the split"""
    stage = project.stage("prepare")
    assert "prepare.py" in stage["cmd"], f"prepare's cmd is {stage['cmd']!r}"
    for dep in ("prepare.py", "digits.py"):
        assert dep in stage["deps"], f"prepare does not list {dep} in its deps: {stage['deps']}"
    for key in ("seed", "test_fraction"):
        assert covers(stage["params"], "prepare", key), (
            f"prepare does not depend on the parameter prepare.{key} (params: {stage['params']})")
    outs = [o["path"] for o in stage["outs"]]
    for f in ("data/prepared/train.npz", "data/prepared/test.npz"):
        assert any(f == o or f.startswith(o.rstrip("/") + "/") for o in outs), (
            f"prepare's outs {outs} do not hold {f}")


def test_train_stage(project):
    """train: runs train.py, depends on it, on the training data and on every train parameter"""
    stage = project.stage("train")
    assert "train.py" in stage["cmd"], f"train's cmd is {stage['cmd']!r}"
    assert "train.py" in stage["deps"], f"train does not list train.py in its deps: {stage['deps']}"
    assert any(d in ("data/prepared", "data/prepared/", "data/prepared/train.npz")
               for d in stage["deps"]), (
        f"train does not depend on the training data (data/prepared/train.npz): {stage['deps']}")
    missing = [k for k in TRAIN_KEYS if not covers(stage["params"], "train", k)]
    assert not missing, (f"train does not depend on the parameters "
                         f"{', '.join('train.' + k for k in missing)} (params: {stage['params']})")


def test_evaluate_stage(project):
    """evaluate: runs evaluate.py, depends on it, train.py, train.hidden, the model and the test data"""
    stage = project.stage("evaluate")
    assert "evaluate.py" in stage["cmd"], f"evaluate's cmd is {stage['cmd']!r}"
    for dep in ("evaluate.py", "train.py", "models/model.pt"):
        assert dep in stage["deps"], f"evaluate does not list {dep} in its deps: {stage['deps']}"
    assert covers(stage["params"], "train", "hidden"), (
        f"evaluate does not depend on train.hidden, which it builds the model with "
        f"(params: {stage['params']})")
    assert any(d in ("data/prepared", "data/prepared/", "data/prepared/test.npz")
               for d in stage["deps"]), (
        f"evaluate does not depend on the test data (data/prepared/test.npz): {stage['deps']}")


def test_data_and_model_are_tracked_by_dvc(project):
    """The prepared data and the model are DVC outputs kept in DVC's cache (not in Git)"""
    outs = {o["path"].rstrip("/"): o for s in project.stages().values() for o in s["outs"]}
    for path in ("models/model.pt",):
        assert path in outs, f"{path} is not an output of any stage (outs: {sorted(outs)})"
        assert outs[path]["cache"], f"{path} is an output with cache: false; DVC must track it"
    data = [o for p, o in outs.items() if p.startswith("data/prepared")]
    assert data and all(o["cache"] for o in data), (
        "the prepared data (data/prepared) must be a cached output of prepare")


def test_metrics_file_through_dvcs_api(project):
    """evaluate declares metrics.json as metrics; DVC's API shows test_accuracy and test_loss"""
    evaluate = project.stage("evaluate")
    declared = {o["path"]: o for o in evaluate["outs"]}
    assert "metrics.json" in declared and declared["metrics.json"]["metric"], (
        f"evaluate does not declare metrics.json under metrics: (its outputs: {sorted(declared)})")
    assert not declared["metrics.json"]["cache"], (
        "metrics.json is cached by DVC; declare it with cache: false (a small file for Git)")
    shown = project.data["repo"]["metrics"].get("metrics.json")
    assert isinstance(shown, dict) and "error" not in shown, (
        f"`dvc metrics show` cannot read metrics.json: {shown}")
    for key in ("test_accuracy", "test_loss"):
        assert isinstance(shown.get(key), int | float), (
            f"metrics.json has no number {key!r} (it has {sorted(shown)})")
    assert 0 <= shown["test_accuracy"] <= 1 and shown["test_loss"] >= 0


def test_plots_file_is_declared(project):
    """train declares plots/training.csv as plots, one row per epoch"""
    train = project.stage("train")
    declared = {o["path"]: o for o in train["outs"]}
    assert "plots/training.csv" in declared and declared["plots/training.csv"]["plot"], (
        f"train does not declare plots/training.csv under plots: (its outputs: {sorted(declared)})")
    assert not declared["plots/training.csv"]["cache"], (
        "plots/training.csv is cached by DVC; declare it with cache: false")
    text = project.data["files"].get("plots/training.csv")
    assert isinstance(text, str), "plots/training.csv was not written by train"
    lines = [line for line in text.splitlines() if line.strip()]
    header = [h.strip() for h in lines[0].split(",")]
    for col in ("epoch", "train_loss", "train_accuracy"):
        assert col in header, f"plots/training.csv has no column {col!r} (header: {header})"
    epochs = project.data["repo"]["params"]["params.yaml"]["train"]["epochs"]
    assert len(lines) - 1 == epochs, (
        f"plots/training.csv has {len(lines) - 1} rows; train.epochs is {epochs}")


def test_params_through_dvcs_api(project):
    """params.yaml holds the README's parameters, as DVC's API reads them"""
    params = project.data["repo"]["params"].get("params.yaml")
    assert isinstance(params, dict) and "error" not in params, f"params.yaml: {params}"
    for section, keys in (("prepare", ("seed", "test_fraction")), ("train", TRAIN_KEYS)):
        table = params.get(section)
        assert isinstance(table, dict), f"params.yaml has no section {section!r}"
        missing = [k for k in keys if not isinstance(table.get(k), int | float)]
        assert not missing, f"params.yaml has no number {section}.{missing[0]}"


def test_stages_write_only_inside_the_project(project):
    """The stages write nothing outside the project's folder"""
    project.require_repro()
    outside = project.data.get("outside", [])
    assert not outside, ("your stages wrote files outside the project's folder (keep every "
                         "output inside it, and declare it in dvc.yaml): "
                         + ", ".join(outside[:5]))
