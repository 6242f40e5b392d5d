"""Public tests for layers.py: small examples with known answers.

Run them with `autograder check a1` in your assignment folder. They run your code in a
separate process through the `student` fixture; the graded (hidden) tests do the same
with numerical gradient checks, random shapes and dtypes, float32/float64 agreement and
a speed comparison on top.
"""

import numpy as np
import pytest

pytestmark = [pytest.mark.visibility("visible")]


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "affine")
@pytest.mark.hint('Reshape x to (N, -1) first: x.reshape(x.shape[0], -1) @ w + b.')
def test_affine_forward_values(student):
    """affine_forward flattens x and computes x @ w + b"""
    layers = student.module("layers")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 3))
    w = rng.standard_normal((6, 4))
    b = rng.standard_normal(4)
    out, _ = layers.affine_forward(x, w, b)
    assert out.shape == (2, 4), f"out has shape {out.shape}, expected (2, 4)"
    np.testing.assert_allclose(out, x.reshape(2, 6) @ w + b, rtol=1e-10, atol=1e-12)


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "affine")
@pytest.mark.hint('dx = dout @ w.T reshaped back to x.shape; dw = x_flat.T @ dout; db = dout.sum(axis=0).')
def test_affine_backward_shapes(student):
    """affine_backward returns dx in the shape of x, dw and db in the shapes of w and b"""
    layers = student.module("layers")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 2, 2, 2))
    w = rng.standard_normal((8, 5))
    b = rng.standard_normal(5)
    _, cache = layers.affine_forward(x, w, b)
    dout = rng.standard_normal((3, 5))
    dx, dw, db = layers.affine_backward(dout, cache)
    assert dx.shape == x.shape, f"dx has shape {dx.shape}, expected {x.shape} (the shape of x)"
    assert dw.shape == w.shape, f"dw has shape {dw.shape}, expected {w.shape}"
    assert db.shape == b.shape, f"db has shape {db.shape}, expected {b.shape}"
    np.testing.assert_allclose(db, dout.sum(axis=0), rtol=1e-10)


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "activations")
@pytest.mark.hint('Keep x in the cache; the backward mask is (x > 0).')
def test_relu_forward_backward(student):
    """relu_forward clips negatives; relu_backward passes gradient only where x > 0"""
    layers = student.module("layers")
    x = np.array([[-1.0, 2.0], [0.5, -3.0]])
    out, cache = layers.relu_forward(x)
    np.testing.assert_array_equal(out, [[0.0, 2.0], [0.5, 0.0]])
    dx = layers.relu_backward(np.array([[10.0, 20.0], [30.0, 40.0]]), cache)
    np.testing.assert_array_equal(dx, [[0.0, 20.0], [30.0, 0.0]])


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "activations")
@pytest.mark.hint('Cache the output s: the derivative is s * (1 - s).')
def test_sigmoid_values(student):
    """sigmoid is 0.5 at 0, saturates to 1 and 0, and its slope at 0 is 1/4"""
    layers = student.module("layers")
    x = np.array([0.0, 2.0, -2.0, 800.0, -800.0])
    out, cache = layers.sigmoid_forward(x)
    expected = np.array([0.5, 1 / (1 + np.exp(-2.0)), 1 / (1 + np.exp(2.0)), 1.0, 0.0])
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-300)
    dx = layers.sigmoid_backward(np.ones(5), cache)
    assert dx[0] == pytest.approx(0.25)
    assert np.all(np.isfinite(dx))


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "loss")
@pytest.mark.hint('Subtract the row maximum before exp; divide loss and gradient by N.')
def test_softmax_cross_entropy_uniform(student):
    """softmax_cross_entropy of equal scores is log(C); the gradient is a batch mean"""
    layers = student.module("layers")
    n, c = 4, 5
    y = np.array([0, 1, 2, 4])
    loss, dscores = layers.softmax_cross_entropy(np.zeros((n, c)), y)
    assert loss == pytest.approx(np.log(c)), f"loss {loss}, expected log({c}) = {np.log(c)}"
    expected = np.full((n, c), 1.0 / c)
    expected[np.arange(n), y] -= 1.0
    np.testing.assert_allclose(dscores, expected / n, rtol=1e-10, atol=1e-12)


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "regularization")
@pytest.mark.hint('Loss 0.5 * reg * sum(W**2) over weights only; gradient reg * W.')
def test_l2_regularization_value(student):
    """l2_regularization is 0.5 * reg * sum(W**2) with gradient reg * W"""
    layers = student.module("layers")
    weights = {"W1": np.ones((2, 3)), "W2": np.full(4, 2.0)}
    loss, grads = layers.l2_regularization(weights, 0.1)
    assert loss == pytest.approx(0.5 * 0.1 * (6 * 1.0 + 4 * 4.0))
    assert sorted(grads) == ["W1", "W2"]
    np.testing.assert_allclose(grads["W1"], 0.1 * weights["W1"])
    np.testing.assert_allclose(grads["W2"], 0.1 * weights["W2"])


def _conv_definition(x, w, b, stride, pad):
    """The definition of conv2d_forward, written with loops (fine for tiny inputs)."""
    n, c, h, wd = x.shape
    f, _, hh, ww = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    h_out = (h + 2 * pad - hh) // stride + 1
    w_out = (wd + 2 * pad - ww) // stride + 1
    out = np.zeros((n, f, h_out, w_out))
    for i in range(h_out):
        for j in range(w_out):
            window = xp[:, :, i * stride : i * stride + hh, j * stride : j * stride + ww]
            out[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out


@pytest.mark.points(2)
@pytest.mark.tags("shapes", "conv")
@pytest.mark.hint('Pad x on the two spatial axes only; output size is (H + 2*pad - HH) // stride + 1.')
def test_conv2d_forward_small(student):
    """conv2d_forward matches the definition on a small input (strides 1 and 2, padding)"""
    layers = student.module("layers")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 5, 5))
    w = rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4)
    for stride, pad in [(1, 0), (1, 1), (2, 1)]:
        out, _ = layers.conv2d_forward(x, w, b, stride, pad)
        expected = _conv_definition(x, w, b, stride, pad)
        where = f"stride={stride}, pad={pad}"
        assert out.shape == expected.shape, (
            f"{where}: out has shape {out.shape}, expected {expected.shape}"
        )
        np.testing.assert_allclose(out, expected, rtol=1e-8, atol=1e-10, err_msg=where)


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "pool")
@pytest.mark.hint("Route each window's gradient only to the position of its maximum.")
def test_maxpool_small(student):
    """maxpool_forward takes window maxima; maxpool_backward routes gradient to them"""
    layers = student.module("layers")
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    out, cache = layers.maxpool_forward(x, 2, 2)
    np.testing.assert_array_equal(out, [[[[5.0, 7.0], [13.0, 15.0]]]])
    dx = layers.maxpool_backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), cache)
    expected = np.zeros((1, 1, 4, 4))
    expected[0, 0, 1, 1], expected[0, 0, 1, 3] = 1.0, 2.0
    expected[0, 0, 3, 1], expected[0, 0, 3, 3] = 3.0, 4.0
    np.testing.assert_array_equal(dx, expected)


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "conv")
@pytest.mark.hint('Accumulate into the padded dx, then cut the padding off.')
def test_conv2d_backward_shapes(student):
    """conv2d_backward returns dx, dw, db in the shapes of x, w, b (stride 2, padding 1)"""
    layers = student.module("layers")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 6, 6))
    w = rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4)
    out, cache = layers.conv2d_forward(x, w, b, 2, 1)
    assert out.shape == (2, 4, 3, 3), f"out has shape {out.shape}, expected (2, 4, 3, 3)"
    dx, dw, db = layers.conv2d_backward(np.ones(out.shape), cache)
    assert dx.shape == x.shape, f"dx has shape {dx.shape}, expected {x.shape}"
    assert dw.shape == w.shape, f"dw has shape {dw.shape}, expected {w.shape}"
    np.testing.assert_allclose(db, np.full(4, 2 * 3 * 3.0))  # one per output position


@pytest.mark.points(2)
@pytest.mark.tags("gradients", "affine", "activations")
@pytest.mark.hint('Compare your backward pass with numerical_gradient on a tiny input.')
def test_affine_sigmoid_numerical_gradient(student):
    """affine and sigmoid backward agree with central differences (how the graders check)"""
    from autograder.testing import numerical_gradient, rel_error

    layers = student.module("layers")
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2)), rng.standard_normal(2)
    dout = rng.standard_normal((3, 2))
    out, cache = layers.affine_forward(x, w, b)
    # A gradient check is only meaningful for a correct forward pass (the numerical
    # gradient of a forward that returns zeros is zero, like a backward that returns zeros).
    np.testing.assert_allclose(
        out, x @ w + b, rtol=1e-10, atol=1e-12,
        err_msg="fix affine_forward first: this test checks the gradient of a correct forward",
    )
    dx, dw, db = layers.affine_backward(dout, cache)
    # numerical_gradient perturbs one entry at a time and calls your forward pass
    for name, analytic, f, value in [
        ("dx", dx, lambda v: layers.affine_forward(v, w, b)[0], x),
        ("dw", dw, lambda v: layers.affine_forward(x, v, b)[0], w),
        ("db", db, lambda v: layers.affine_forward(x, w, v)[0], b),
    ]:
        err = rel_error(numerical_gradient(f, value, dout), analytic)
        assert err < 1e-7, f"{name}: relative error {err:.1e} (should be below 1e-7)"
    out, cache = layers.sigmoid_forward(x)
    np.testing.assert_allclose(
        out, 1.0 / (1.0 + np.exp(-x)), rtol=1e-10, atol=1e-12,
        err_msg="fix sigmoid_forward first: this test checks the gradient of a correct forward",
    )
    dx = layers.sigmoid_backward(np.ones_like(x), cache)
    numeric = numerical_gradient(lambda v: layers.sigmoid_forward(v)[0], x, np.ones_like(x))
    err = rel_error(numeric, dx)
    assert err < 1e-7, f"sigmoid dx: relative error {err:.1e} (should be below 1e-7)"
