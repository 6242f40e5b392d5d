"""Hidden: the numpy RNN against the grader's float64 definition, and its backward pass
(one step and BPTT) against central differences computed in the grader.

Values first: a gradient check of a wrong forward proves nothing. The grader perturbs
one input at a time, calls the student's forward through the proxy (``student.map``: one
round trip per batch of perturbed inputs) and compares ``sum(h * dh)`` differences with
the student's backward pass, in float64.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autograder.testing import numerical_gradient, rel_error, sample_coords

pytestmark = [pytest.mark.visibility("after_published")]

SHAPES = settings(derandomize=True, deadline=None, max_examples=6, database=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture,
                                         HealthCheck.too_slow])
NAMES = ("x", "h0", "Wx", "Wh", "b")
TOL = 1e-6


def _params(rng, n, t, d, h, scale=0.6):
    x = rng.standard_normal((n, t, d))
    h0 = rng.standard_normal((n, h))
    wx = scale * rng.standard_normal((d, h)) / np.sqrt(d)
    wh = scale * rng.standard_normal((h, h)) / np.sqrt(h)
    b = 0.3 * rng.standard_normal(h)
    return [x, h0, wx, wh, b]


def _tuple(value, k, what):
    assert isinstance(value, tuple | list) and len(value) == k, (
        f"{what} returned {type(value).__name__}"
        f"{' of length ' + str(len(value)) if isinstance(value, tuple | list) else ''}, "
        f"expected a tuple of {k}")
    return value


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "rnn_numpy")
def test_rnn_step_forward(student, ref, rng):
    """rnn_step_forward: h_next = tanh(x Wx + h_prev Wh + b), float64 in and out"""
    rnn = student.module("rnn_numpy")
    x, h0, wx, wh, b = _params(rng, 4, 1, 3, 5)
    h_next, _ = _tuple(rnn.rnn_step_forward(x[:, 0], h0, wx, wh, b), 2, "rnn_step_forward")
    ref.assert_close("rnn_step_forward", h_next, ref.rnn(x, h0, wx, wh, b)[:, 0], rtol=1e-10,
                     atol=1e-12)
    assert np.asarray(h_next).dtype == np.float64, "rnn_step_forward: float64 in, float64 out"


@pytest.mark.points(2)
@pytest.mark.tags("gradients", "rnn_numpy")
def test_rnn_step_backward(student, ref, rng):
    """rnn_step_backward: all five gradients of one step match central differences"""
    rnn = student.module("rnn_numpy")
    x, h0, wx, wh, b = _params(rng, 3, 1, 4, 5)
    args = [x[:, 0], h0, wx, wh, b]
    names = ("x", "h_prev", "Wx", "Wh", "b")
    dnext = rng.standard_normal((3, 5))
    _, cache = rnn.rnn_step_forward(*args)
    grads = _tuple(rnn.rnn_step_backward(dnext, cache), 5, "rnn_step_backward")
    for i, name in enumerate(names):

        def f_batch(values, i=i):
            calls = [tuple(v if j == i else a for j, a in enumerate(args)) for v in values]
            return [out[0] for out in student.map(rnn.rnn_step_forward, calls)]

        num = numerical_gradient(None, args[i], dnext, f_batch=f_batch)
        got = ref.array(grads[i], f"rnn_step_backward's d{name}")
        assert got.shape == args[i].shape, f"d{name} has shape {got.shape}, expected {args[i].shape}"
        err = rel_error(got, num)
        assert err < TOL, (f"rnn_step_backward: d{name} differs from central differences "
                           f"(relative error {err:.2e}); da = dh_next * (1 - h_next**2)")


@pytest.mark.points(2)
@pytest.mark.tags("shapes", "rnn_numpy")
@SHAPES
@given(n=st.integers(1, 4), t=st.integers(1, 7), d=st.integers(1, 5), h=st.integers(1, 6))
def test_rnn_forward_shapes_and_values(student, ref, n, t, d, h):
    """rnn_forward: (N, T, H) states h_1..h_T for any batch, length and sizes"""
    rnn = student.module("rnn_numpy")
    args = _params(np.random.default_rng([n, t, d, h]), n, t, d, h)
    out, _ = _tuple(rnn.rnn_forward(*args), 2, "rnn_forward")
    ref.assert_close(f"rnn_forward on x of shape {(n, t, d)}", out, ref.rnn(*args), rtol=1e-10,
                     atol=1e-12, hint="h[:, t] is the state after reading x[:, t]")


@pytest.mark.points(2)
@pytest.mark.tags("gradients", "rnn_numpy")
@pytest.mark.parametrize("wrt", NAMES)
def test_rnn_bptt(student, ref, rng, wrt):
    """rnn_backward (BPTT): the gradient of one argument matches central differences"""
    rnn = student.module("rnn_numpy")
    args = _params(rng, 3, 6, 4, 5, scale=0.9)
    i = NAMES.index(wrt)
    h, cache = rnn.rnn_forward(*args)
    ref.assert_close("rnn_forward", h, ref.rnn(*args), rtol=1e-10, atol=1e-12,
                     hint="fix the forward pass first")
    dh = rng.standard_normal(np.shape(h))
    grads = _tuple(rnn.rnn_backward(dh, cache), 5, "rnn_backward")

    def f_batch(values):
        calls = [tuple(v if j == i else a for j, a in enumerate(args)) for v in values]
        return [out[0] for out in student.map(rnn.rnn_forward, calls)]

    coords = sample_coords(args[i].shape, 40, rng)
    num = numerical_gradient(None, args[i], dh, coords=coords, f_batch=f_batch)
    got = ref.array(grads[i], f"rnn_backward's d{wrt}")
    assert got.shape == args[i].shape, f"d{wrt} has shape {got.shape}, expected {args[i].shape}"
    err = rel_error(got[coords], num[coords])
    assert err < TOL, (
        f"rnn_backward: d{wrt} differs from central differences (relative error {err:.2e}); "
        "the gradient reaching h_t is dh[:, t] plus what flows back from step t+1")


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "rnn_numpy")
def test_rnn_gradient_through_time_only(student, rng):
    """rnn_backward: a gradient on the last state alone reaches x_1 and h0 (through time)"""
    rnn = student.module("rnn_numpy")
    args = _params(rng, 2, 5, 3, 4, scale=1.2)
    h, cache = rnn.rnn_forward(*args)
    dh = np.zeros(np.shape(h))
    dh[:, -1] = rng.standard_normal((2, 4))
    dx, dh0, *_ = rnn.rnn_backward(dh, cache)

    def f_batch(values):
        return [out[0] for out in student.map(
            rnn.rnn_forward, [(v, *args[1:]) for v in values])]

    num = numerical_gradient(None, args[0], dh, f_batch=f_batch)
    assert np.abs(np.asarray(dx)[:, 0]).max() > 1e-6, (
        "rnn_backward: an upstream gradient on h_T alone gives no gradient to x_1: the "
        "gradient must flow back through every step")
    assert rel_error(np.asarray(dx), num) < TOL, "rnn_backward: dx wrong with dh on h_T only"
    assert np.abs(np.asarray(dh0)).max() > 1e-6, "rnn_backward: dh0 is zero"


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "rnn_numpy")
def test_rnn_keeps_inputs(student, rng):
    """rnn_forward and rnn_backward leave their arguments unchanged"""
    rnn = student.module("rnn_numpy")
    args = _params(rng, 2, 4, 3, 4)
    handles = [student.put(a) for a in args]
    result = student.call(rnn.rnn_forward, *handles, want="handle")
    for name, a, hnd in zip(NAMES, args, handles, strict=True):
        assert np.array_equal(student.fetch(hnd), a), f"rnn_forward modified {name}"
    dh = rng.standard_normal((2, 4, 4))
    dh_handle = student.put(dh)
    cache = student.getitem(result, 1)
    student.call(rnn.rnn_backward, dh_handle, cache, want="none")
    assert np.array_equal(student.fetch(dh_handle), dh), "rnn_backward modified dh"
    for name, a, hnd in zip(NAMES, args, handles, strict=True):
        assert np.array_equal(student.fetch(hnd), a), f"rnn_backward modified {name}"
