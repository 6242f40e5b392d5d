"""Hidden: shape and dtype contracts on Hypothesis-generated shapes (derandomized).

A contract is kept by right results only: the layers' outputs and gradients, and the
models' scores, loss and predictions, are also compared with the grader's reference on
the same inputs (float32 inputs within float32 rounding), so zeros of the right shape earn
nothing here. The models' gradients are checked for shape only: their values are the
subject of the model gradient tests, which a bug there already fails.

Shapes come first: a wrong shape fails its example at once (Hypothesis then shrinks to the
smallest such input), while a dtype other than the input's is only noted and reported
after every example passed, so a dtype slip never hides the shape bug a test exists for.
"""

from itertools import pairwise

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = [pytest.mark.visibility("after_published")]

SHAPES = settings(
    derandomize=True,
    deadline=None,
    max_examples=25,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
DTYPES = st.sampled_from([np.float64, np.float32])  # shrinks toward float64


def _arrays(seed, dtype, *shapes):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


class Contract:
    """Checks of one test over all its examples: shape, then values, fail at once; a wrong
    dtype is kept for :meth:`finish`, which reports it after every example passed."""

    def __init__(self):
        self.dtype_slips = []

    def expect(self, name, arr, shape, dtype, ref=None, expected=None):
        """``arr`` has ``shape``, ``expected``'s values (when given) and ``dtype``."""
        arr = np.asarray(arr)
        assert arr.shape == tuple(shape), (
            f"{name} has shape {arr.shape}, expected {tuple(shape)}"
        )
        if expected is not None:
            ref.assert_close(name, arr, expected, dtype=dtype)
        if arr.dtype != dtype:
            self.dtype_slips.append(
                f"{name} has dtype {arr.dtype} for {np.dtype(dtype).name} inputs (shape "
                f"{arr.shape}); keep the input dtype"
            )

    def finish(self):
        if self.dtype_slips:
            raise AssertionError(self.dtype_slips[0])


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "affine")
def test_affine_shapes(student, ref):
    """affine forward/backward: shapes, dtypes and values for inputs of any rank"""
    layers = student.module("layers")
    contract = Contract()

    @SHAPES
    @given(
        n=st.integers(1, 5),
        dims=st.lists(st.integers(1, 4), min_size=1, max_size=3),
        m=st.integers(1, 6),
        dtype=DTYPES,
    )
    def examples(n, dims, m, dtype):
        d = int(np.prod(dims))
        x, w, b, dout = _arrays(n + d + m, dtype, (n, *dims), (d, m), (m,), (n, m))
        out, cache = layers.affine_forward(x, w, b)
        contract.expect("out", out, (n, m), dtype, ref, ref.affine(x, w, b))
        dx, dw, db = layers.affine_backward(dout, cache)
        grads = ref.affine_backward(dout, x, w)
        contract.expect("dx", dx, x.shape, dtype, ref, grads[0])
        contract.expect("dw", dw, w.shape, dtype, ref, grads[1])
        contract.expect("db", db, b.shape, dtype, ref, grads[2])

    examples()
    contract.finish()


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "activations")
def test_activation_and_loss_shapes(student, ref):
    """relu, sigmoid and softmax_cross_entropy keep shapes and dtypes, with right values"""
    contract = Contract()

    @SHAPES
    @given(
        shape=st.lists(st.integers(1, 5), min_size=1, max_size=4),
        dtype=DTYPES,
        n_classes=st.integers(2, 7),
    )
    def examples(shape, dtype, n_classes):
        layers = student.module("layers")
        x, dout = _arrays(len(shape), dtype, shape, shape)
        for name in ("relu", "sigmoid"):
            out, cache = getattr(layers, f"{name}_forward")(x)
            contract.expect(f"{name} out", out, x.shape, dtype, ref, getattr(ref, name)(x))
            dx = getattr(layers, f"{name}_backward")(dout, cache)
            expected = getattr(ref, f"{name}_backward")(dout, x)
            contract.expect(f"{name} dx", dx, x.shape, dtype, ref, expected)
        n = shape[0]
        (scores,) = _arrays(n, dtype, (n, n_classes))
        y = np.arange(n) % n_classes
        loss, dscores = layers.softmax_cross_entropy(scores, y)
        assert np.ndim(loss) == 0 and np.isfinite(loss), f"loss must be a finite scalar, got {loss!r}"
        expected_loss, expected_d = ref.softmax_cross_entropy(scores, y)
        ref.assert_close("loss", float(loss), expected_loss, dtype=dtype)
        contract.expect("dscores", dscores, scores.shape, dtype, ref, expected_d)

    examples()
    contract.finish()


@st.composite
def conv_cases(draw):
    n, c, f = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    pad, stride = draw(st.integers(0, 2)), draw(st.integers(1, 3))
    hh, ww = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    h = draw(st.integers(max(1, hh - 2 * pad), 9))
    w = draw(st.integers(max(1, ww - 2 * pad), 9))
    return n, c, h, w, f, hh, ww, stride, pad


@pytest.mark.points(2)
@pytest.mark.tags("shapes", "conv")
def test_conv2d_shapes(student, ref):
    """conv2d forward/backward: output (N, F, H_out, W_out) and gradients, any stride/pad"""
    contract = Contract()

    @SHAPES
    @given(case=conv_cases(), dtype=DTYPES)
    def examples(case, dtype):
        layers = student.module("layers")
        n, c, h, w, f, hh, ww, stride, pad = case
        h_out = (h + 2 * pad - hh) // stride + 1
        w_out = (w + 2 * pad - ww) // stride + 1
        x, wt, b, dout = _arrays(
            sum(case), dtype, (n, c, h, w), (f, c, hh, ww), (f,), (n, f, h_out, w_out)
        )
        where = f"(stride={stride}, pad={pad})"
        out, cache = layers.conv2d_forward(x, wt, b, stride, pad)
        expected = ref.conv2d(x, wt, b, stride, pad)
        contract.expect(f"out {where}", out, (n, f, h_out, w_out), dtype, ref, expected)
        dx, dw, db = layers.conv2d_backward(dout, cache)
        grads = ref.conv2d_backward(dout, x, wt, stride, pad)
        contract.expect(f"dx {where}", dx, x.shape, dtype, ref, grads[0])
        contract.expect(f"dw {where}", dw, wt.shape, dtype, ref, grads[1])
        contract.expect(f"db {where}", db, b.shape, dtype, ref, grads[2])

    examples()
    contract.finish()


@st.composite
def pool_cases(draw):
    pool, stride = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(pool, 9)), draw(st.integers(pool, 9))
    return draw(st.integers(1, 3)), draw(st.integers(1, 3)), h, w, pool, stride


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "pool")
def test_maxpool_shapes(student, ref):
    """maxpool forward/backward: output (N, C, H_out, W_out) and dx, any pool/stride"""
    contract = Contract()

    @SHAPES
    @given(case=pool_cases(), dtype=DTYPES)
    def examples(case, dtype):
        layers = student.module("layers")
        n, c, h, w, pool, stride = case
        h_out, w_out = (h - pool) // stride + 1, (w - pool) // stride + 1
        x, dout = _arrays(sum(case), dtype, (n, c, h, w), (n, c, h_out, w_out))
        where = f"(pool={pool}, stride={stride})"
        out, cache = layers.maxpool_forward(x, pool, stride)
        contract.expect(f"out {where}", out, (n, c, h_out, w_out), dtype, ref, ref.maxpool(x, pool, stride))
        dx = layers.maxpool_backward(dout, cache)
        expected = ref.maxpool_backward(dout, x, pool, stride)
        contract.expect(f"dx {where}", dx, x.shape, dtype, ref, expected)

    examples()
    contract.finish()


@pytest.mark.points(2)
@pytest.mark.tags("shapes", "mlp")
def test_mlp_shapes(student, ref):
    """MLP of any depth: params, scores, loss, grads and predict have the documented shapes"""
    contract = Contract()

    @SHAPES
    @given(
        sizes=st.lists(st.integers(1, 12), min_size=2, max_size=5),
        n=st.integers(1, 8),
        activation=st.sampled_from(["sigmoid", "relu"]),
    )
    def examples(sizes, n, activation):
        mlp = student.module("mlp")
        model = mlp.MLP(sizes, activation=activation, reg=0.1, seed=n)
        params = model.params
        expected = {}
        for i, (a, b) in enumerate(pairwise(sizes), start=1):
            expected[f"W{i}"], expected[f"b{i}"] = (a, b), (b,)
        assert sorted(params) == sorted(expected), f"params keys {sorted(params)} for sizes {sizes}"
        for name, shape in expected.items():
            contract.expect(f"params[{name!r}]", params[name], shape, np.float64)
        rng = np.random.default_rng(n)
        X, y = rng.random((n, sizes[0])), rng.integers(0, sizes[-1], n)
        ref_scores = ref.mlp_loss(params, X, None, activation)
        ref_loss, _ = ref.mlp_loss(params, X, y, activation, 0.1)
        contract.expect("scores", model.loss(X), (n, sizes[-1]), np.float64, ref, ref_scores)
        loss, grads = model.loss(X, y)
        assert np.ndim(loss) == 0 and np.isfinite(loss), f"loss must be a finite scalar, got {loss!r}"
        ref.assert_close("loss (cross-entropy + L2 penalty)", float(loss), ref_loss)
        assert sorted(grads) == sorted(expected), f"grads keys {sorted(grads)}"
        for name, shape in expected.items():
            contract.expect(f"grads[{name!r}]", grads[name], shape, np.float64)
        pred = np.asarray(model.predict(X))
        assert pred.shape == (n,), f"predict returned shape {pred.shape}, expected ({n},)"
        assert np.issubdtype(pred.dtype, np.integer), (
            f"predict returned dtype {pred.dtype}, expected integers"
        )
        assert np.all((pred >= 0) & (pred < sizes[-1]))
        ref.assert_predictions(pred, ref_scores)

    examples()
    contract.finish()


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "cnn")
def test_convnet_shapes(student, ref):
    """ConvNet: params, scores, grads and predict shapes for any even image size"""
    contract = Contract()

    @SHAPES
    @given(
        c=st.integers(1, 3),
        half=st.integers(1, 5),
        f=st.integers(1, 5),
        k=st.sampled_from([1, 3, 5]),
        classes=st.integers(2, 10),
        n=st.integers(1, 4),
    )
    def examples(c, half, f, k, classes, n):
        cnn = student.module("cnn")
        size = 2 * half
        model = cnn.ConvNet(
            input_shape=(c, size, size),
            num_filters=f,
            filter_size=k,
            num_classes=classes,
            reg=0.1,
            seed=n,
        )
        expected = {"W1": (f, c, k, k), "b1": (f,), "W2": (f * half * half, classes), "b2": (classes,)}
        params = model.params
        assert sorted(params) == sorted(expected), f"params keys {sorted(params)}"
        for name, shape in expected.items():
            contract.expect(f"params[{name!r}]", params[name], shape, np.float64)
        rng = np.random.default_rng(n)
        X, y = rng.random((n, c, size, size)), rng.integers(0, classes, n)
        ref_scores = ref.convnet_loss(params, X)
        ref_loss, _ = ref.convnet_loss(params, X, y, 0.1)
        contract.expect("scores", model.loss(X), (n, classes), np.float64, ref, ref_scores)
        loss, grads = model.loss(X, y)
        assert np.ndim(loss) == 0 and np.isfinite(loss), f"loss must be a finite scalar, got {loss!r}"
        ref.assert_close("loss (cross-entropy + L2 penalty)", float(loss), ref_loss)
        for name, shape in expected.items():
            contract.expect(f"grads[{name!r}]", grads[name], shape, np.float64)
        pred = np.asarray(model.predict(X))
        assert pred.shape == (n,) and np.issubdtype(pred.dtype, np.integer)
        ref.assert_predictions(pred, ref_scores)


    examples()
    contract.finish()
