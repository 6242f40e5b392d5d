"""Public checks of Assignment 6: the functions' contracts on small inputs, and the
project's stages as DVC's Python API reads them (nothing is run). The hidden tests run
the whole project: `dvc repro`, a parameter change, push and pull, the wandb run."""

from __future__ import annotations

import numpy as np
import pytest


def test_dvc_yaml_has_the_three_stages(student):
    """dvc.yaml defines the stages prepare, train and evaluate"""
    repo = student.probe("a6_describe")
    names = [s["name"] for s in repo["stages"]]
    assert sorted(names) == ["evaluate", "prepare", "train"], f"stages in dvc.yaml: {names}"


def test_params_yaml_sections(student):
    """params.yaml has the sections prepare and train"""
    params = student.probe("a6_describe")["params"].get("params.yaml", {})
    assert {"prepare", "train"} <= set(params), f"params.yaml: {params}"


def test_split_sizes(student):
    """prepare.split keeps every sample once and puts round(fraction * N) in the test part"""
    X = np.arange(40, dtype=np.float32).reshape(20, 2)
    y = np.arange(20)
    X_train, y_train, X_test, y_test = student.module("prepare").split(X, y, 3, 0.25)
    assert len(y_test) == 5 and len(y_train) == 15
    assert sorted(np.concatenate([y_train, y_test]).tolist()) == list(range(20))


def test_build_model_scores(student):
    """train.build_model(hidden) maps (N, 64) images to (N, 10) scores"""
    model = student.module("train").build_model(16)
    out = model(student.tensor(np.zeros((3, 64), np.float32)))
    assert out.shape == (3, 10)


@pytest.mark.parametrize("n", [4, 16])
def test_sample_images(student, n):
    """train.sample_images returns n uint8 8x8 images with captions"""
    X = np.random.default_rng(0).random((20, 64)).astype(np.float32)
    images = student.module("train").sample_images(X, np.arange(20) % 10, n)
    assert len(images) == n and images[0][0].shape == (8, 8) and images[0][0].dtype == np.uint8
