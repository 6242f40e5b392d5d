"""Hidden: documented arguments and promises that the other tests use only at their defaults.

Each test checks one promise of a docstring or of the README: non-default values of every
config key of the update rules, the defaults when ``config`` is ``None``, "``w`` itself is
left unchanged" (checked through a handle on the worker's own array), the rounding of
``train_val_split``, the initialization rules (``weight_scale``, ``seed``), and the loss
as a Python float, sigmoid without overflow, and the first maximum on ties in max pooling.
"""

import numpy as np
import pytest

pytestmark = [pytest.mark.visibility("after_published")]


def _momentum(w, dw, state, lr, momentum=0.9):
    state["velocity"] = momentum * state.get("velocity", 0.0) - lr * dw
    return w + state["velocity"]


def _adam(w, dw, state, lr, beta1=0.9, beta2=0.999, epsilon=1e-8):
    t = state["t"] = state.get("t", 0) + 1
    state["m"] = beta1 * state.get("m", 0.0) + (1 - beta1) * dw
    state["v"] = beta2 * state.get("v", 0.0) + (1 - beta2) * dw**2
    m_hat, v_hat = state["m"] / (1 - beta1**t), state["v"] / (1 - beta2**t)
    return w - lr * m_hat / (np.sqrt(v_hat) + epsilon)


def _follow(fn, rule, config, hyper, w, grads, what):
    """The student's rule and ours from ``w`` on the same gradients, step by step."""
    ours, state = w.copy(), {}
    for step, dw in enumerate(grads, start=1):
        w, config = fn(w, dw, config)
        ours = rule(ours, dw, state, **hyper)
        np.testing.assert_allclose(
            np.asarray(w, dtype=np.float64), ours, rtol=1e-7, atol=1e-12,
            err_msg=f"{what}: step {step} differs from the documented rule",
        )


# ---------------------------------------------------------------- update rules


@pytest.mark.points(1)
@pytest.mark.tags("convergence", "optim")
def test_optim_rules_leave_w_unchanged(student, rng):
    """optim rules return a new array: the w passed in is left unchanged"""
    optim = student.module("optim")
    for name in ("sgd", "sgd_momentum", "adam"):
        w = rng.standard_normal((3, 4))
        handle = student.put(w)  # the worker's own array: an in-place update shows here
        fn = getattr(optim, name)
        config = None
        for _ in range(2):
            next_w, config = fn(handle, rng.standard_normal((3, 4)), config)
        after = np.asarray(student.fetch(handle))
        assert np.array_equal(after, w), (
            f"optim.{name} changed the w it was given (by up to "
            f"{float(np.max(np.abs(after - w))):.3g}): return a new array, leave w as it is"
        )
        assert not np.array_equal(np.asarray(next_w), w), f"optim.{name} did not move w"


@pytest.mark.points(1)
@pytest.mark.tags("convergence", "optim")
def test_optim_defaults_when_config_is_none(student, rng):
    """optim rules with config=None use the documented defaults, then carry their state"""
    optim = student.module("optim")
    w = rng.standard_normal(6)
    # tiny gradients in some coordinates: there Adam's epsilon (1e-8) changes the step
    grads = [rng.standard_normal(6) * np.array([1, 1, 1, 1e-7, 1e-7, 1e-8]) for _ in range(4)]
    next_w, config = optim.sgd(w, grads[0], None)
    np.testing.assert_allclose(next_w, w - 1e-2 * grads[0], rtol=1e-12,
                               err_msg="optim.sgd(w, dw, None): the default learning_rate is 1e-2")
    _follow(optim.sgd_momentum, _momentum, None, {"lr": 1e-2}, w, grads,
            "optim.sgd_momentum with config=None (learning_rate 1e-2, momentum 0.9)")
    _follow(optim.adam, _adam, None, {"lr": 1e-3}, w, grads,
            "optim.adam with config=None (learning_rate 1e-3, beta1 0.9, beta2 0.999, "
            "epsilon 1e-8)")


@pytest.mark.points(1)
@pytest.mark.tags("convergence", "optim")
def test_momentum_uses_config_momentum(student, rng):
    """optim.sgd_momentum reads momentum from config (0.5 here, not the default 0.9)"""
    optim = student.module("optim")
    w = rng.standard_normal(5)
    grads = [rng.standard_normal(5) for _ in range(5)]
    _follow(optim.sgd_momentum, _momentum, {"learning_rate": 0.1, "momentum": 0.5},
            {"lr": 0.1, "momentum": 0.5}, w, grads, "optim.sgd_momentum with momentum=0.5")


@pytest.mark.points(1)
@pytest.mark.tags("convergence", "optim")
def test_adam_uses_config_betas_and_epsilon(student, rng):
    """optim.adam reads beta1, beta2 and epsilon from config (non-default values here)"""
    optim = student.module("optim")
    hyper = {"beta1": 0.7, "beta2": 0.95, "epsilon": 1e-2}
    w = rng.standard_normal(5)
    grads = [0.05 * rng.standard_normal(5) for _ in range(6)]  # |dw| near epsilon
    _follow(optim.adam, _adam, {"learning_rate": 0.01, **hyper}, {"lr": 0.01, **hyper}, w,
            grads, f"optim.adam with {hyper}")


# ---------------------------------------------------------------- data split


@pytest.mark.points(1)
@pytest.mark.tags("convergence", "train")
def test_train_val_split_rounds_val_size(student):
    """train_val_split: round(val_fraction * N) validation rows (3.7 -> 4, 3.2 -> 3)"""
    train = student.module("train")
    X, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    for fraction, n_val in ((0.37, 4), (0.32, 3)):
        X_tr, y_tr, X_val, y_val = train.train_val_split(X, y, fraction, 1)
        assert (len(y_val), len(y_tr)) == (n_val, 10 - n_val), (
            f"val_fraction={fraction} of 10 rows gave {len(y_val)} validation and "
            f"{len(y_tr)} training rows, expected round({fraction * 10:g}) = {n_val} and "
            f"{10 - n_val}"
        )


# ---------------------------------------------------------------- initialization


def _std_close(name, value, expected, tol=0.05):
    std = float(np.std(np.asarray(value)))
    assert abs(std - expected) < tol * expected, (
        f"{name} has standard deviation {std:.4g}, expected {expected:.4g}"
    )


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "mlp")
def test_mlp_init_scale(student):
    """MLP weights: weight_scale * N(0, 1); weight_scale=None means 1/sqrt(fan_in); zero biases"""
    mlp = student.module("mlp")
    sizes = [400, 300, 200]
    for scale in (None, 2.5):
        params = mlp.MLP(sizes, activation="relu", seed=5, weight_scale=scale).params
        for i, fan_in in ((1, 400), (2, 300)):
            expected = 1 / np.sqrt(fan_in) if scale is None else scale
            _std_close(f"W{i} with weight_scale={scale}", params[f"W{i}"], expected)
            assert np.all(np.asarray(params[f"b{i}"]) == 0), f"b{i} must start at zero"


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "cnn")
def test_convnet_init_scale(student):
    """ConvNet weights: fan_in C*k*k (conv) and F*H/2*W/2 (affine), or weight_scale"""
    cnn = student.module("cnn")
    kwargs = {"input_shape": (3, 8, 8), "num_filters": 60, "filter_size": 5, "num_classes": 10}
    for scale in (None, 0.3):
        params = cnn.ConvNet(**kwargs, seed=2, weight_scale=scale).params
        for name, fan_in in (("W1", 3 * 5 * 5), ("W2", 60 * 4 * 4)):
            expected = 1 / np.sqrt(fan_in) if scale is None else scale
            _std_close(f"{name} with weight_scale={scale}", params[name], expected, tol=0.08)
        for name in ("b1", "b2"):
            assert np.all(np.asarray(params[name]) == 0), f"{name} must start at zero"


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "mlp", "cnn")
def test_init_follows_seed(student):
    """MLP and ConvNet: the same seed gives the same weights, another seed other weights"""
    mlp, cnn = student.module("mlp"), student.module("cnn")
    makers = {
        "MLP": lambda seed: mlp.MLP([6, 5, 3], seed=seed).params,
        "ConvNet": lambda seed: cnn.ConvNet(
            input_shape=(1, 4, 4), num_filters=2, filter_size=3, num_classes=3, seed=seed
        ).params,
    }
    for model, make in makers.items():
        a, b, c = make(11), make(11), make(12)
        for name in ("W1", "W2"):
            assert np.array_equal(a[name], b[name]), (
                f"{model}(seed=11) twice gave different {name}: draw from "
                "np.random.default_rng(seed)"
            )
            assert not np.array_equal(a[name], c[name]), (
                f"{model} with seed=11 and seed=12 gave the same {name}: use the seed"
            )


# ---------------------------------------------------------------- loss


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "loss")
def test_softmax_loss_is_python_float(student, rng):
    """softmax_cross_entropy returns the loss as a Python float, for float32 inputs too"""
    layers = student.module("layers")
    y = rng.integers(0, 4, 6)
    for dtype in (np.float64, np.float32):
        loss, _ = layers.softmax_cross_entropy(rng.standard_normal((6, 4)).astype(dtype), y)
        # np.float64 is a float subclass and passes; np.float32 and 0-d arrays are not floats
        assert isinstance(loss, float), (
            f"for {np.dtype(dtype).name} scores the loss is a {type(loss).__name__}, "
            "expected a Python float (float(...))"
        )


# ---------------------------------------------------------------- layers


@pytest.mark.points(1)
@pytest.mark.tags("parity", "activations")
def test_sigmoid_forward_does_not_overflow(student):
    """sigmoid_forward: right values and no overflow warning for inputs of size 1000"""
    layers = student.module("layers")
    for dtype in (np.float64, np.float32):
        x = np.array([[-1000.0, -100.0, 0.0, 100.0, 1000.0]], dtype=dtype)
        run = student.probe("numpy_warnings", layers.sigmoid_forward, x)
        out = np.asarray(run["result"][0], dtype=np.float64)
        np.testing.assert_allclose(out, [[0.0, 0.0, 0.5, 1.0, 1.0]], atol=1e-30,
                                   err_msg=f"sigmoid of {x.tolist()} ({np.dtype(dtype).name})")
        assert not run["warnings"], (
            f"sigmoid_forward on {np.dtype(dtype).name} inputs of size 1000 warned "
            f"{run['warnings'][0]!r}: exp(-x) overflows for large negative x; compute "
            "through exp(-|x|) (or tanh) so that no exp() gets a large positive argument"
        )


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "pool")
def test_maxpool_backward_ties_go_to_first(student, rng, ref):
    """maxpool_backward: on ties the gradient goes to the first maximum (row-major) only"""
    layers = student.module("layers")
    # values 0, 1, 2 only: many windows hold their maximum twice or more
    x = rng.integers(0, 3, (2, 3, 6, 6)).astype(np.float64)
    for pool, stride in ((2, 2), (3, 1)):
        dout = rng.standard_normal(ref.maxpool(x, pool, stride).shape)
        _, cache = layers.maxpool_forward(x, pool, stride)
        ref.assert_close(
            f"dx (pool={pool}, stride={stride})", layers.maxpool_backward(dout, cache),
            ref.maxpool_backward(dout, x, pool, stride),
            hint="each window's gradient goes to one input, its first maximum in row-major "
                 "order, also when the maximum appears twice",
        )
