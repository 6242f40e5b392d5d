"""Hidden: float32 and float64 forward passes agree within float32 tolerance.

A1 runs on the CPU only, so "parity" here is between precisions: the same computation in
float32 must match float64 up to float32 rounding. Numerically unstable formulas (an
unshifted softmax, for example) break this long before they break float64. The float64
result must first equal the grader's reference: two precisions agreeing on a wrong answer
(zeros, say) is no parity.
"""

from itertools import pairwise

import numpy as np
import pytest

pytestmark = [pytest.mark.visibility("after_published")]

RTOL32 = 1e-4


def _close(name, got32, ref64, expected=None, ref=None):
    """float32 result ``got32`` matches the float64 result ``ref64``, which itself must
    equal the grader's ``expected`` (reference definitions ``ref``) when given."""
    if expected is not None:
        ref.assert_close(f"{name} (float64)", ref64, expected)
    got32 = np.asarray(got32)
    assert got32.dtype == np.float32, f"{name}: float32 inputs gave {got32.dtype}, expected float32"
    assert np.all(np.isfinite(got32)), f"{name}: float32 result has inf/nan (overflow?)"
    scale = max(1.0, float(np.max(np.abs(ref64)))) if np.size(ref64) else 1.0
    np.testing.assert_allclose(
        got32.astype(np.float64),
        ref64,
        rtol=RTOL32,
        atol=RTOL32 * scale,
        err_msg=f"{name}: float32 and float64 results disagree",
    )


@pytest.mark.points(1)
@pytest.mark.tags("parity", "affine", "activations")
def test_affine_and_activations_parity(student, rng, ref):
    """affine, relu and sigmoid: float32 matches float64"""
    layers = student.module("layers")
    x, w, b = rng.standard_normal((16, 3, 5)), rng.standard_normal((15, 7)), rng.standard_normal(7)
    f32 = [a.astype(np.float32) for a in (x, w, b)]
    _close(
        "affine_forward",
        layers.affine_forward(*f32)[0],
        layers.affine_forward(x, w, b)[0],
        ref.affine(x, w, b),
        ref,
    )
    z = 10.0 * rng.standard_normal((8, 9))
    for name in ("relu", "sigmoid"):
        fwd, bwd = getattr(layers, f"{name}_forward"), getattr(layers, f"{name}_backward")
        out32, cache32 = fwd(z.astype(np.float32))
        out64, cache64 = fwd(z)
        _close(f"{name}_forward", out32, out64, getattr(ref, name)(z), ref)
        dout = rng.standard_normal(z.shape)
        _close(
            f"{name}_backward",
            bwd(dout.astype(np.float32), cache32),
            bwd(dout, cache64),
            getattr(ref, f"{name}_backward")(dout, z),
            ref,
        )


def _float32_loss_cause(layers, loss32):
    """Why a float32 loss is not finite, told apart on two one-row inputs: scores of 200
    with the label at the maximum overflow exp() unless the row maximum is subtracted;
    a label 120 below the maximum has a probability that underflows to 0 in float32, so
    log(softmax) gives log(0) = -inf even after the subtraction."""
    label_at_max = np.array([[200.0, 0.0, -5.0]], dtype=np.float32)
    label_far_below = np.array([[0.0, -120.0, 1.0]], dtype=np.float32)
    over, _ = layers.softmax_cross_entropy(label_at_max, np.array([0]))
    under, _ = layers.softmax_cross_entropy(label_far_below, np.array([1]))
    if not np.isfinite(over):
        return (f"float32 loss is {loss32}: exp() overflows for scores near 200 (the loss of "
                f"scores [200, 0, -5] with label 0 is {over}); subtract the row maximum first")
    if not np.isfinite(under):
        return (f"float32 loss is {loss32}: the probability of a label far below the row "
                f"maximum underflows to 0 in float32 and log(0) is -inf (scores [0, -120, 1] "
                f"with label 1 give {under}, expected 121.3); take the log-probabilities as "
                "shifted - log(sum(exp(shifted))) instead of the log of the probabilities")
    return f"float32 loss is {loss32} for scores of size up to 200 (expected a finite loss)"


@pytest.mark.points(2)
@pytest.mark.tags("parity", "loss")
def test_softmax_cross_entropy_parity_large_scores(student, rng, ref):
    """softmax_cross_entropy: float32 matches float64 for scores of size +-200 (stability)"""
    layers = student.module("layers")
    n, c = 12, 10
    scores = 60.0 * rng.standard_normal((n, c))  # exp(200) overflows float32, not float64
    y = rng.integers(0, c, n)
    loss32, d32 = layers.softmax_cross_entropy(scores.astype(np.float32), y)
    loss64, d64 = layers.softmax_cross_entropy(scores, y)
    expected_loss, expected_d = ref.softmax_cross_entropy(scores, y)
    assert float(loss64) == pytest.approx(expected_loss, rel=1e-8), (
        f"float64 loss {loss64!r}, expected {expected_loss:.10g} (mean cross-entropy)"
    )
    assert np.isfinite(loss32), _float32_loss_cause(layers, loss32)
    assert float(loss32) == pytest.approx(float(loss64), rel=RTOL32)
    _close("dscores", d32, d64, expected_d, ref)


@pytest.mark.points(1)
@pytest.mark.tags("parity", "conv", "pool")
def test_conv_and_pool_parity(student, rng, ref):
    """conv2d_forward and maxpool_forward: float32 matches float64"""
    layers = student.module("layers")
    x, w, b = (
        rng.standard_normal((4, 3, 9, 9)),
        rng.standard_normal((5, 3, 3, 3)),
        rng.standard_normal(5),
    )
    f32 = [a.astype(np.float32) for a in (x, w, b)]
    _close(
        "conv2d_forward",
        layers.conv2d_forward(*f32, 2, 1)[0],
        layers.conv2d_forward(x, w, b, 2, 1)[0],
        ref.conv2d(x, w, b, 2, 1),
        ref,
    )
    _close(
        "maxpool_forward",
        layers.maxpool_forward(f32[0], 3, 2)[0],
        layers.maxpool_forward(x, 3, 2)[0],
        ref.maxpool(x, 3, 2),
        ref,
    )


@pytest.mark.points(1)
@pytest.mark.tags("parity", "mlp")
def test_mlp_parity(student, rng, ref):
    """MLP scores: float32 parameters and inputs match float64"""
    mlp = student.module("mlp")
    sizes = [20, 16, 12, 6]
    X = rng.random((10, 20))
    params = {}
    for i, (a, b) in enumerate(pairwise(sizes), start=1):
        params[f"W{i}"] = rng.standard_normal((a, b)) / np.sqrt(a)
        params[f"b{i}"] = 0.1 * rng.standard_normal(b)
    scores = {}
    for dtype in (np.float64, np.float32):
        model = mlp.MLP(sizes, activation="sigmoid", seed=7)
        handle = student.getattr(model, "params", by="handle")
        for name, value in params.items():
            student.setitem(handle, name, value.astype(dtype))
        scores[dtype] = model.loss(X.astype(dtype))
    expected = ref.mlp_loss(params, X, None, "sigmoid")
    _close("MLP scores", scores[np.float32], scores[np.float64], expected, ref)
