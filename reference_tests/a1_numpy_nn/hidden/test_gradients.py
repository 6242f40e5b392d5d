"""Hidden: analytic gradients against float64 central differences computed in the grader.

The grader perturbs each input (or a sample of its coordinates), calls the student's
forward pass through the proxy, and compares with the student's backward pass using the
CS231n relative error. Before that, the forward pass (for models: the loss value) must
equal the grader's reference on the same inputs: the gradient of a wrong function proves
nothing (zeros agree with the numerical gradient of zeros; an L2 penalty alone agrees
with its own gradient). A wrong forward therefore also costs the gradient test, with a
message that says to fix the forward pass first.
"""

from itertools import pairwise

import numpy as np
import pytest

from autograder.testing import numerical_gradient, rel_error

pytestmark = [pytest.mark.visibility("after_published")]

TOL = 1e-6  # correct code lands around 1e-8 .. 1e-10; bugs land above 1e-3


@pytest.mark.points(2)
@pytest.mark.tags("gradients", "affine")
def test_affine_gradients(student, rng, ref, layer_grad_check):
    """affine_backward: dx, dw, db match numerical gradients (4-D input)"""
    layers = student.module("layers")
    x = rng.standard_normal((4, 2, 3, 2))
    w = rng.standard_normal((12, 5))
    b = rng.standard_normal(5)
    layer_grad_check(
        layers.affine_forward,
        layers.affine_backward,
        [x, w, b],
        [0, 1, 2],
        ["x", "w", "b"],
        rng,
        reference=ref.affine,
    )


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "activations")
def test_relu_gradient(student, rng, ref, layer_grad_check):
    """relu_backward matches the numerical gradient"""
    layers = student.module("layers")
    x = rng.standard_normal((5, 7))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink, where differences are ill defined
    layer_grad_check(
        layers.relu_forward, layers.relu_backward, [x], [0], ["x"], rng, reference=ref.relu
    )


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "activations")
def test_sigmoid_gradient(student, rng, ref, layer_grad_check):
    """sigmoid_backward matches the numerical gradient"""
    layers = student.module("layers")
    x = 2.0 * rng.standard_normal((6, 5))
    layer_grad_check(
        layers.sigmoid_forward, layers.sigmoid_backward, [x], [0], ["x"], rng, reference=ref.sigmoid
    )


@pytest.mark.points(2)
@pytest.mark.tags("gradients", "loss")
def test_softmax_cross_entropy_gradient(student, rng):
    """softmax_cross_entropy: loss value and dscores match the definition and differences"""
    layers = student.module("layers")
    n, c = 9, 6
    scores = rng.standard_normal((n, c))
    y = rng.integers(0, c, n)
    loss, dscores = layers.softmax_cross_entropy(scores, y)
    logp = scores - scores.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    expected = -logp[np.arange(n), y].mean()
    assert float(loss) == pytest.approx(expected, rel=1e-10), (
        f"loss {loss}, expected {expected} (mean cross-entropy over the batch)"
    )
    numeric = numerical_gradient(lambda s: layers.softmax_cross_entropy(s, y)[0], scores, None)
    err = rel_error(numeric, dscores)
    assert err < TOL, f"dscores: relative error {err:.2e} against numerical gradient"


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "regularization")
def test_l2_regularization_gradient(student, rng):
    """l2_regularization: gradients of dict and list inputs match numerical gradients"""
    layers = student.module("layers")
    reg = 0.37
    w1, w2 = rng.standard_normal((4, 3)), rng.standard_normal((2, 2, 3))
    loss, grads = layers.l2_regularization({"W1": w1, "W2": w2}, reg)
    assert float(loss) == pytest.approx(0.5 * reg * (np.sum(w1**2) + np.sum(w2**2)), rel=1e-10)
    num1 = numerical_gradient(
        lambda a: layers.l2_regularization({"W1": a, "W2": w2}, reg)[0], w1, None
    )
    assert rel_error(num1, grads["W1"]) < TOL
    loss_list, grads_list = layers.l2_regularization([w1, w2], reg)
    assert float(loss_list) == pytest.approx(float(loss), rel=1e-12)
    num2 = numerical_gradient(lambda a: layers.l2_regularization([w1, a], reg)[0], w2, None)
    assert rel_error(num2, grads_list[1]) < TOL


@pytest.mark.points(2)
@pytest.mark.tags("gradients", "conv")
def test_conv2d_gradients_stride1(student, rng, ref, layer_grad_check):
    """conv2d_backward (stride 1, padding 1): dx, dw, db match numerical gradients"""
    layers = student.module("layers")
    x = rng.standard_normal((2, 3, 6, 5))
    w = rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4)
    layer_grad_check(
        layers.conv2d_forward,
        layers.conv2d_backward,
        [x, w, b],
        [0, 1, 2],
        ["x", "w", "b"],
        rng,
        reference=ref.conv2d,
        n_coords=30,
        tol=1e-5,
        forward_args=(1, 1),
    )


@pytest.mark.points(2)
@pytest.mark.tags("gradients", "conv")
def test_conv2d_gradients_strided(student, rng, ref, layer_grad_check):
    """conv2d_backward with stride 2 and a non-square kernel matches numerical gradients"""
    layers = student.module("layers")
    for pad in (0, 1):
        x = rng.standard_normal((2, 2, 7, 8))
        w = rng.standard_normal((3, 2, 3, 2))
        b = rng.standard_normal(3)
        layer_grad_check(
            layers.conv2d_forward,
            layers.conv2d_backward,
            [x, w, b],
            [0, 1, 2],
            ["x", "w", "b"],
            rng,
            reference=ref.conv2d,
            n_coords=30,
            tol=1e-5,
            forward_args=(2, pad),
        )


@pytest.mark.points(2)
@pytest.mark.tags("gradients", "pool")
def test_maxpool_gradients(student, rng, ref, layer_grad_check):
    """maxpool_backward matches numerical gradients (2x2/2 and overlapping 3x3/1)"""
    layers = student.module("layers")
    for pool, stride, shape in [(2, 2, (2, 3, 6, 4)), (3, 1, (2, 2, 5, 6))]:
        # distinct values spaced well above the finite-difference step: no ties
        x = rng.permutation(np.prod(shape)).reshape(shape) * 1e-2 + rng.uniform(0, 1e-3, shape)
        layer_grad_check(
            layers.maxpool_forward,
            layers.maxpool_backward,
            [x],
            [0],
            ["x"],
            rng,
            reference=ref.maxpool,
            forward_args=(pool, stride),
        )


def _mlp_params(sizes, rng):
    params = {}
    for i, (a, b) in enumerate(pairwise(sizes), start=1):
        params[f"W{i}"] = rng.standard_normal((a, b)) * (1.5 / np.sqrt(a))
        params[f"b{i}"] = 0.1 * rng.standard_normal(b)
    return params


@pytest.mark.points(2)
@pytest.mark.tags("gradients", "mlp")
def test_mlp_gradients_sigmoid(student, rng, ref, model_grad_check):
    """MLP.loss (sigmoid, 2 hidden layers, no regularization): gradients of every parameter"""
    mlp = student.module("mlp")
    sizes = [12, 10, 8, 5]
    model = mlp.MLP(sizes, activation="sigmoid", reg=0.0, seed=1)
    X, y = rng.standard_normal((7, 12)), rng.integers(0, 5, 7)
    errors = model_grad_check(
        model,
        _mlp_params(sizes, rng),
        X,
        y,
        rng,
        reference_loss=lambda p, X, y: ref.mlp_loss(p, X, y, "sigmoid", 0.0)[0],
    )
    bad = {k: f"{v:.1e}" for k, v in errors.items() if not v < TOL}
    assert not bad, f"relative errors above {TOL:g}: {bad}"


@pytest.mark.points(2)
@pytest.mark.tags("gradients", "mlp", "regularization")
def test_mlp_gradients_relu_regularized(student, rng, ref, model_grad_check):
    """MLP.loss (relu, 3 hidden layers, reg=0.3): gradients of every parameter"""
    mlp = student.module("mlp")
    sizes = [10, 9, 8, 7, 4]
    model = mlp.MLP(sizes, activation="relu", reg=0.3, seed=2)
    X, y = rng.standard_normal((6, 10)), rng.integers(0, 4, 6)
    errors = model_grad_check(
        model,
        _mlp_params(sizes, rng),
        X,
        y,
        rng,
        reference_loss=lambda p, X, y: ref.mlp_loss(p, X, y, "relu", 0.3)[0],
    )
    bad = {k: f"{v:.1e}" for k, v in errors.items() if not v < TOL}
    assert not bad, f"relative errors above {TOL:g}: {bad}"


@pytest.mark.points(2)
@pytest.mark.tags("gradients", "mlp", "regularization")
def test_mlp_regularizes_weights_only(student, rng, ref):
    """MLP: L2 adds 0.5*reg*sum(W**2) over weights only; bias gradients ignore reg"""
    mlp = student.module("mlp")
    sizes = [8, 6, 3]
    reg = 0.7
    params = _mlp_params(sizes, rng)
    X, y = rng.standard_normal((5, 8)), rng.integers(0, 3, 5)
    results = {}
    for r in (0.0, reg):
        model = mlp.MLP(sizes, activation="relu", reg=r, seed=3)
        handle = student.getattr(model, "params", by="handle")
        for name, value in params.items():
            student.setitem(handle, name, value)
        results[r] = model.loss(X, y)
    (loss0, grads0), (loss_r, grads_r) = results[0.0], results[reg]
    data_loss = ref.mlp_loss(params, X, y, "relu", 0.0)[0]
    assert np.ndim(loss0) == 0 and float(loss0) == pytest.approx(data_loss, rel=1e-8), (
        f"with reg=0 the loss is {loss0!r}, expected the mean cross-entropy {data_loss:.10g}; "
        "the penalty is added to the data loss, it does not replace it"
    )
    penalty = 0.5 * reg * sum(np.sum(v**2) for k, v in params.items() if k.startswith("W"))
    assert float(loss_r) - float(loss0) == pytest.approx(penalty, rel=1e-8), (
        f"reg={reg} adds {float(loss_r) - float(loss0):.6f} to the loss, expected "
        f"0.5 * reg * sum(W**2) over the weight matrices = {penalty:.6f}"
    )
    for name in params:
        extra = reg * params[name] if name.startswith("W") else 0.0 * params[name]
        np.testing.assert_allclose(
            grads_r[name] - grads0[name],
            extra,
            rtol=1e-7,
            atol=1e-10,
            err_msg=f"reg changes grads[{name!r}] by the wrong amount",
        )


@pytest.mark.points(2)
@pytest.mark.tags("gradients", "cnn")
def test_convnet_gradients(student, rng, ref, model_grad_check):
    """ConvNet.loss (reg=0.2): gradients of W1, b1, W2, b2 match numerical gradients"""
    cnn = student.module("cnn")
    model = cnn.ConvNet(
        input_shape=(2, 6, 6), num_filters=3, filter_size=3, num_classes=4, reg=0.2, seed=4
    )
    params = {
        "W1": 0.5 * rng.standard_normal((3, 2, 3, 3)),
        "b1": 0.1 * rng.standard_normal(3),
        "W2": 0.3 * rng.standard_normal((3 * 3 * 3, 4)),
        "b2": 0.1 * rng.standard_normal(4),
    }
    X, y = rng.standard_normal((4, 2, 6, 6)), rng.integers(0, 4, 4)
    errors = model_grad_check(
        model,
        params,
        X,
        y,
        rng,
        reference_loss=lambda p, X, y: ref.convnet_loss(p, X, y, 0.2)[0],
        n_coords=15,
    )
    bad = {k: f"{v:.1e}" for k, v in errors.items() if not v < 1e-5}
    assert not bad, f"relative errors above 1e-5: {bad}"
