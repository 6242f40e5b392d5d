"""Experiment tracking: the offline wandb runs, read from their transaction logs."""

from __future__ import annotations

import base64
import csv
import io
import math

import pytest
from conftest import CHANGE

pytestmark = pytest.mark.tags("tracking")

METRICS = ("epoch", "train_loss", "train_accuracy")


def _params(project):
    return project.data["repo"]["params"]["params.yaml"]


def _epoch_rows(run):
    return [row for row in run["history"] if "train_loss" in row]


def test_run_is_finished(project):
    """The wandb run is finished (its log ends with an exit record, exit code 0)"""
    run = project.first_run()
    assert run["exit_code"] == 0, f"the wandb run ended with exit code {run['exit_code']}"


def test_run_belongs_to_the_project(project):
    """The run is logged to the wandb project a6-digits"""
    run = project.first_run()
    assert run["project"] == "a6-digits", (
        f"the run's project is {run['project']!r}: wandb.init(project=\"a6-digits\", ...)")


def test_config_holds_the_train_parameters(project):
    """The run's config holds every train parameter of params.yaml, with its value"""
    run = project.first_run()
    train = _params(project)["train"]
    for key, value in train.items():
        assert key in run["config"], (f"the wandb config has no {key!r} (it has "
                                      f"{sorted(run['config'])}): pass config=... to wandb.init")
        assert run["config"][key] == value, (
            f"the wandb config says {key} = {run['config'][key]!r}, params.yaml {value!r}")


def test_config_follows_a_changed_parameter(project):
    """After train.lr changes, the new run's config has the new value"""
    runs = project.runs()
    assert len(runs) >= 2, (f"{len(runs)} wandb run(s) after two `dvc repro`; the rerun of "
                            "train must log a run of its own")
    assert runs[1]["config"].get(CHANGE["key"]) == pytest.approx(CHANGE["value"]), (
        f"after {CHANGE['section']}.{CHANGE['key']} became {CHANGE['value']}, the new run's "
        f"config says {runs[1]['config'].get(CHANGE['key'])!r}: read the parameters from "
        "params.yaml")


@pytest.mark.points(2)
def test_one_history_row_per_epoch(project):
    """The history has one row per epoch with epoch, train_loss and train_accuracy"""
    run = project.first_run()
    epochs = _params(project)["train"]["epochs"]
    rows = _epoch_rows(run)
    assert len(rows) == epochs, (f"{len(rows)} history rows with train_loss; train.epochs is "
                                 f"{epochs}: call wandb.log once per epoch")
    for i, row in enumerate(rows, start=1):
        missing = [m for m in METRICS if not isinstance(row.get(m), int | float)]
        assert not missing, f"history row {i} has no number {missing[0]!r}: {sorted(row)}"
        assert row["epoch"] == i, f"history row {i} has epoch = {row['epoch']}"
        assert math.isfinite(row["train_loss"]) and 0 <= row["train_accuracy"] <= 1
    assert rows[-1]["train_loss"] < rows[0]["train_loss"], "train_loss did not decrease"


def test_summary_holds_the_last_epoch(project):
    """The run's summary holds the last epoch's train_loss and train_accuracy"""
    run = project.first_run()
    rows = _epoch_rows(run)
    assert rows, "no history row with train_loss"
    for key in ("train_loss", "train_accuracy"):
        assert key in run["summary"], f"the run's summary has no {key!r}"
        assert run["summary"][key] == pytest.approx(rows[-1][key]), (
            f"summary {key} = {run['summary'][key]}, the last epoch's {rows[-1][key]}")


def test_history_agrees_with_the_plots_file(project):
    """plots/training.csv and the wandb history hold the same per-epoch values"""
    runs = project.runs()
    rows = _epoch_rows(runs[-1])  # the files are the last repro's
    text = project.data["files"].get("plots/training.csv")
    assert isinstance(text, str), "plots/training.csv was not written by train"
    table = list(csv.DictReader(io.StringIO(text)))
    assert len(table) == len(rows), (f"plots/training.csv has {len(table)} rows, the wandb "
                                     f"history {len(rows)}")
    # The first run's plots file: compare with the first run (the files are read after the
    # first repro).
    first = _epoch_rows(runs[0])
    for got, row in zip(table, first, strict=True):
        for key in ("train_loss", "train_accuracy"):
            assert float(got[key]) == pytest.approx(row[key], rel=1e-5, abs=1e-7), (
                f"epoch {row['epoch']}: {key} is {got[key]} in plots/training.csv and "
                f"{row[key]} in wandb")


def test_sample_image_panel(project):
    """The run logs a panel of sample images (at least 8) under the key "samples\""""
    run = project.first_run()
    logged = [row for row in run["history"] if "samples._type" in row] or (
        [run["summary"]] if "samples._type" in run["summary"] else [])
    assert logged, ('no "samples" images in the run: wandb.log({"samples": '
                    "[wandb.Image(...), ...]})")
    panel = logged[0]
    assert panel["samples._type"] in ("images/separated", "image-file"), (
        f'"samples" is a {panel["samples._type"]}, not images')
    count = panel.get("samples.count", 1)
    assert count >= 8, f'the "samples" panel has {count} image(s); log at least 8'
    assert len(run["media"]) >= 8, f"{len(run['media'])} image files in the run's media"


def test_final_model_is_logged_as_an_artifact(project):
    """The trained model is logged as a wandb artifact of type "model", with the same bytes"""
    runs = project.runs()
    run = runs[-1]  # the run of the last repro, whose model the project holds
    models = [a for a in run["artifacts"] if a["type"] == "model"]
    assert models, (f"no artifact of type 'model' in the run (artifacts: "
                    f"{[(a['name'], a['type']) for a in run['artifacts']]})")
    md5 = project.data.get("model_md5_b64")
    assert md5, "models/model.pt is missing"
    files = [f for a in models for f in a["files"]]
    assert any(f["md5"] == md5 for f in files), (
        "no file of the model artifact has the bytes of models/model.pt "
        f"(md5 {base64.b64decode(md5).hex()}): add the saved model file to the artifact")
