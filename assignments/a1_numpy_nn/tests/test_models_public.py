"""Public tests for mlp.py, cnn.py, optim.py and train.py."""

import numpy as np
import pytest

from autograder.errors import StudentError

pytestmark = [pytest.mark.visibility("visible")]


def _mlp_scores(params, X, activation):
    """The definition of the MLP's scores: affine - activation - ... - affine."""
    layers = len(params) // 2
    h = X
    for i in range(1, layers + 1):
        h = h @ params[f"W{i}"] + params[f"b{i}"]
        if i < layers:
            h = np.maximum(h, 0) if activation == "relu" else 1 / (1 + np.exp(-h))
    return h


def _convnet_scores(params, X):
    """The definition of the ConvNet's scores, with loops (fine for tiny inputs):
    conv (stride 1, padding (k-1)//2) - relu - 2x2 max pool - affine."""
    w1 = params["W1"]
    n, _, h, wd = X.shape
    k = w1.shape[2]
    pad = (k - 1) // 2
    xp = np.pad(X, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    conv = np.zeros((n, w1.shape[0], h, wd))
    for i in range(h):
        for j in range(wd):
            window = xp[:, :, i : i + k, j : j + k]
            conv[:, :, i, j] = np.tensordot(window, w1, axes=([1, 2, 3], [1, 2, 3]))
    act = np.maximum(conv + params["b1"][None, :, None, None], 0)
    pooled = act.reshape(n, w1.shape[0], h // 2, 2, wd // 2, 2).max(axis=(3, 5))
    return pooled.reshape(n, -1) @ params["W2"] + params["b2"]


def _blobs(n_per_class=30, d=6, classes=3, seed=0):
    """Well separated Gaussian blobs: any working classifier gets them right."""
    rng = np.random.default_rng(seed)
    centers = 3.0 * rng.standard_normal((classes, d))
    X = np.concatenate([c + 0.3 * rng.standard_normal((n_per_class, d)) for c in centers])
    y = np.repeat(np.arange(classes), n_per_class)
    return X, y


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "mlp")
@pytest.mark.hint('Name parameters W1, b1, W2, b2, ...; biases start at zero.')
def test_mlp_params_and_scores(student):
    """MLP has W1, b1, ... of the right shapes, zero biases, and scores (N, C) from them"""
    mlp = student.module("mlp")
    model = mlp.MLP([64, 32, 16, 10], activation="relu", seed=0)
    params = model.params
    expected = {
        "W1": (64, 32),
        "b1": (32,),
        "W2": (32, 16),
        "b2": (16,),
        "W3": (16, 10),
        "b3": (10,),
    }
    assert sorted(params) == sorted(expected), f"params keys {sorted(params)}"
    for name, shape in expected.items():
        assert params[name].shape == shape, (
            f"{name} has shape {params[name].shape}, expected {shape}"
        )
        if name.startswith("b"):
            assert np.all(params[name] == 0), f"{name} should start at zero"
        else:
            assert np.ptp(params[name]) > 0, f"{name} should start random, not constant"
    X = np.random.default_rng(0).random((5, 64))
    scores = model.loss(X)
    assert scores.shape == (5, 10)
    np.testing.assert_allclose(
        scores, _mlp_scores(params, X, "relu"), rtol=1e-8, atol=1e-10,
        err_msg="scores are not relu(relu(X @ W1 + b1) @ W2 + b2) @ W3 + b3 with model.params",
    )


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "mlp")
@pytest.mark.hint("Raise ValueError in __init__ when activation is not 'sigmoid' or 'relu'.")
def test_mlp_rejects_unknown_activation(student):
    """MLP raises ValueError for an unknown activation"""
    mlp = student.module("mlp")
    with pytest.raises(StudentError) as info:
        mlp.MLP([4, 3, 2], activation="tanh")
    assert info.value.type_name == "ValueError", (
        f"expected ValueError, your code raised {info.value.type_name}: {info.value.message}"
    )


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "mlp")
@pytest.mark.hint('loss(X, y) returns (loss, grads) with one gradient per key of params.')
def test_mlp_initial_loss(student):
    """With tiny weights the loss is about log(C) and grads has one entry per parameter"""
    mlp = student.module("mlp")
    model = mlp.MLP([20, 15, 7], activation="sigmoid", seed=1, weight_scale=1e-4)
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((10, 20)), rng.integers(0, 7, 10)
    loss, grads = model.loss(X, y)
    assert loss == pytest.approx(np.log(7), rel=1e-3), f"loss {loss}, expected about log(7)"
    assert sorted(grads) == ["W1", "W2", "b1", "b2"]


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "cnn")
@pytest.mark.hint('Check the shapes listed in the ConvNet docstring; pad by (k - 1) // 2.')
def test_convnet_shapes(student):
    """ConvNet params and scores have the documented shapes; scores come from params"""
    cnn = student.module("cnn")
    model = cnn.ConvNet(input_shape=(1, 8, 8), num_filters=6, filter_size=3, num_classes=10)
    params = model.params
    expected = {"W1": (6, 1, 3, 3), "b1": (6,), "W2": (6 * 4 * 4, 10), "b2": (10,)}
    for name, shape in expected.items():
        assert params[name].shape == shape, (
            f"{name} has shape {params[name].shape}, expected {shape}"
        )
    for name in ("W1", "W2"):
        assert np.ptp(params[name]) > 0, f"{name} should start random, not constant"
    X = np.random.default_rng(0).random((3, 1, 8, 8))
    scores = model.loss(X)
    assert scores.shape == (3, 10)
    np.testing.assert_allclose(
        scores, _convnet_scores(params, X), rtol=1e-8, atol=1e-10,
        err_msg="scores are not conv - relu - 2x2 max pool - affine with model.params",
    )


@pytest.mark.points(1)
@pytest.mark.tags("convergence", "optim")
@pytest.mark.hint('next_w = w - learning_rate * dw.')
def test_sgd_step(student):
    """optim.sgd moves against the gradient by learning_rate"""
    optim = student.module("optim")
    w = np.array([1.0, -2.0, 3.0])
    dw = np.array([0.5, 0.5, -1.0])
    next_w, config = optim.sgd(w, dw, {"learning_rate": 0.1})
    np.testing.assert_allclose(next_w, w - 0.1 * dw)
    assert config["learning_rate"] == 0.1


@pytest.mark.points(1)
@pytest.mark.tags("convergence", "optim")
@pytest.mark.hint("Store velocity (and Adam's m, v, t) in config; Adam needs bias correction.")
def test_momentum_and_adam_first_step(student):
    """First steps: momentum moves by -lr * dw; Adam by about lr against the gradient sign"""
    optim = student.module("optim")
    w = np.array([1.0, -2.0, 3.0])
    dw = np.array([0.5, -0.25, 4.0])
    next_w, config = optim.sgd_momentum(w, dw, {"learning_rate": 0.1})
    np.testing.assert_allclose(next_w, w - 0.1 * dw, err_msg="momentum, first step")
    np.testing.assert_allclose(config["velocity"], -0.1 * dw, err_msg="momentum velocity")
    next_w, config = optim.adam(w, dw, {"learning_rate": 0.01})
    # with bias correction, m_hat / sqrt(v_hat) = sign(dw) on the first step
    np.testing.assert_allclose(
        next_w, w - 0.01 * np.sign(dw), rtol=1e-6, err_msg="adam, first step"
    )
    assert config["t"] == 1


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "train")
@pytest.mark.hint('Permute indices with np.random.default_rng(seed), then split once.')
def test_train_val_split_partition(student):
    """train_val_split puts every row in exactly one part, val_fraction of them in val"""
    train = student.module("train")
    X = np.arange(50.0).reshape(25, 2)
    y = np.arange(25)
    X_tr, y_tr, X_val, y_val = train.train_val_split(X, y, 0.2, 0)
    assert len(X_val) == 5 and len(X_tr) == 20
    assert sorted(np.concatenate([y_tr, y_val]).tolist()) == list(range(25))
    np.testing.assert_array_equal(X_tr[:, 0], 2.0 * y_tr)  # rows keep their labels


@pytest.mark.points(2)
@pytest.mark.tags("convergence", "train")
@pytest.mark.hint('Append loss, train_acc and val_acc once per epoch; shuffle each epoch.')
def test_train_history_on_blobs(student):
    """train returns one history entry per epoch and learns separable blobs"""
    mlp, train = student.module("mlp"), student.module("train")
    X, y = _blobs()
    model = mlp.MLP([6, 10, 3], activation="relu", seed=0)
    history = train.train(
        model, X, y, X, y, optimizer="sgd", lr=0.1, epochs=5, batch_size=10, seed=0
    )
    assert sorted(history) == ["loss", "train_acc", "val_acc"]
    assert all(len(history[k]) == 5 for k in history), {k: len(v) for k, v in history.items()}
    assert history["loss"][-1] < history["loss"][0]
    assert np.mean(model.predict(X) == y) == 1.0
