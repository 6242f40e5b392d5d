"""The modules' functions against the README's contracts (verdicts from the grader's own
definitions)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import log_softmax, mlp_forward, split

pytestmark = pytest.mark.tags("model")


def test_split_follows_the_readme(student):
    """prepare.split: the README's permutation, test part first, order kept"""
    rng = np.random.default_rng(5)
    X = rng.random((57, 64)).astype(np.float32)
    y = rng.integers(0, 10, 57)
    got = student.module("prepare").split(X, y, 11, 0.3)
    train_idx, test_idx = split(57, 11, 0.3)
    for g, want, name in zip(got, (X[train_idx], y[train_idx], X[test_idx], y[test_idx]),
                             ("X_train", "y_train", "X_test", "y_test"), strict=True):
        np.testing.assert_array_equal(np.asarray(g), want, err_msg=name)


def test_build_model_layers(student):
    """train.build_model(hidden): Linear(64, hidden) - ReLU - Linear(hidden, 10)"""
    model = student.module("train").build_model(24)
    state = student.probe("state_dict", model)
    shapes = sorted(tuple(v.shape) for v in state.values())
    assert shapes == sorted([(24, 64), (24,), (10, 24), (10,)]), f"parameter shapes {shapes}"
    x = np.random.default_rng(1).random((5, 64)).astype(np.float32)
    np.testing.assert_allclose(model(student.tensor(x)), mlp_forward(state, x), rtol=1e-4,
                               atol=1e-5)


def test_train_epochs_history(student):
    """train.train_epochs returns one row per epoch: epoch, mean train_loss, train_accuracy"""
    train = student.module("train")
    rng = np.random.default_rng(3)
    X = rng.random((96, 64)).astype(np.float32)
    y = (X[:, :32].sum(1) > X[:, 32:].sum(1)).astype(np.int64)
    model = train.build_model(16)
    history = train.train_epochs(model, student.tensor(X), student.tensor(y), epochs=4,
                                 lr=0.05, batch_size=32, seed=0)
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    for h in history:
        assert 0 <= h["train_accuracy"] <= 1 and h["train_loss"] > 0
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    # the first epoch's loss is the mean over samples of the losses before each step: it
    # cannot be below the loss of the final model by much, nor above the initial by much
    assert history[0]["train_loss"] < 2.5


def test_first_epoch_of_a_full_batch_is_the_initial_model(student):
    """train_epochs with one batch of all samples: the epoch's loss and accuracy are the
    initial model's (each sample scored before its step)"""
    train = student.module("train")
    rng = np.random.default_rng(4)
    X = rng.random((40, 64)).astype(np.float32)
    y = rng.integers(0, 10, 40)
    model = train.build_model(8)
    s = mlp_forward(student.probe("state_dict", model), X)
    history = train.train_epochs(model, student.tensor(X), student.tensor(y), epochs=1,
                                 lr=0.01, batch_size=64, seed=0)
    assert history[0]["train_loss"] == pytest.approx(
        float(-log_softmax(s)[np.arange(40), y].mean()), rel=1e-4)
    assert history[0]["train_accuracy"] == pytest.approx(float((s.argmax(1) == y).mean()))


def test_scores_are_the_models_forward(student):
    """evaluate.scores: the model's raw scores (N, 10) for (N, 64) images"""
    train, evaluate = student.module("train"), student.module("evaluate")
    model = train.build_model(12)
    state = student.probe("state_dict", model)
    X = np.random.default_rng(6).random((9, 64)).astype(np.float32)
    got = np.asarray(evaluate.scores(model, X))
    assert got.shape == (9, 10)
    np.testing.assert_allclose(got, mlp_forward(state, X), rtol=1e-4, atol=1e-5)


def test_metrics_follow_the_definition(student):
    """evaluate.metrics: share of argmax == label, mean cross-entropy"""
    rng = np.random.default_rng(8)
    s = rng.normal(size=(30, 10)) * 3
    y = rng.integers(0, 10, 30)
    got = student.module("evaluate").metrics(s, y)
    assert got["test_accuracy"] == pytest.approx(float((s.argmax(1) == y).mean()), abs=1e-12)
    want = float(-log_softmax(s)[np.arange(30), y].mean())
    assert got["test_loss"] == pytest.approx(want, rel=1e-9)


def test_sample_images_are_the_first_digits(student):
    """train.sample_images: the first n images as uint8 0..255, captions "label k\""""
    rng = np.random.default_rng(2)
    X = rng.random((30, 64)).astype(np.float32)
    y = rng.integers(0, 10, 30)
    got = student.module("train").sample_images(X, y, 12)
    assert len(got) == 12
    for i, (img, caption) in enumerate(got):
        np.testing.assert_array_equal(np.asarray(img),
                                      (X[i].reshape(8, 8) * 255).round().astype(np.uint8))
        assert caption == f"label {int(y[i])}"
