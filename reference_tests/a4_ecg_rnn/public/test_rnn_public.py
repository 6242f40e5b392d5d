"""Public tests for rnn_numpy.py and cells.py: known values on tiny inputs, and BPTT
against finite differences on a small RNN.

Run them with `autograder check a4`. The hidden tests add torch's equations with random
weights, every gradient of BPTT, Hypothesis-drawn shapes, initialization and more.
"""

import numpy as np
import pytest

from autograder.testing import numerical_gradient, rel_error

pytestmark = [pytest.mark.visibility("visible")]


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "rnn_numpy")
def test_rnn_step_forward_known_value(student):
    """rnn_step_forward: tanh(x Wx + h Wh + b) on a 1x1 example"""
    rnn = student.module("rnn_numpy")
    x, h, wx, wh, b = (np.array([[0.5]]), np.array([[-1.0]]), np.array([[2.0]]),
                       np.array([[0.5]]), np.array([0.1]))
    h_next, _ = rnn.rnn_step_forward(x, h, wx, wh, b)
    np.testing.assert_allclose(h_next, np.tanh([[0.5 * 2.0 - 0.5 + 0.1]]), rtol=1e-12)


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "rnn_numpy")
@pytest.mark.hint("Walk backwards in time; the gradient reaching h_t is dh[:, t] plus what "
                  "flows back from step t+1.")
def test_rnn_backward_dx(student):
    """rnn_backward: dx of a 2x4x3 RNN matches central differences"""
    rnn = student.module("rnn_numpy")
    rng = np.random.default_rng(0)
    x, h0 = rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 5))
    wx, wh, b = 0.5 * rng.standard_normal((3, 5)), 0.5 * rng.standard_normal((5, 5)), np.zeros(5)
    h, cache = rnn.rnn_forward(x, h0, wx, wh, b)
    assert np.shape(h) == (2, 4, 5), f"rnn_forward returned shape {np.shape(h)}, expected (2, 4, 5)"
    dh = rng.standard_normal((2, 4, 5))
    dx = rnn.rnn_backward(dh, cache)[0]
    num = numerical_gradient(lambda v: rnn.rnn_forward(v, h0, wx, wh, b)[0], x, dh)
    assert rel_error(dx, num) < 1e-6, f"relative error {rel_error(dx, num):.2e}"


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "cells")
def test_cells_with_zero_weights(student):
    """LSTMCell and GRUCell with all weights zero: known outputs, parameter shapes"""
    cells = student.module("cells")
    x = np.ones((2, 3), np.float32)
    lstm, gru = cells.LSTMCell(3, 4), cells.GRUCell(3, 4)
    shapes = {k: np.shape(v) for k, v in student.probe("state_dict", lstm).items()}
    assert shapes == {"weight_ih": (16, 3), "weight_hh": (16, 4), "bias_ih": (16,),
                      "bias_hh": (16,)}, f"LSTMCell(3, 4) parameters: {shapes}"
    for cell in (lstm, gru):
        student.probe("load_state", cell, {k: np.zeros(np.shape(v), np.float32) for k, v in
                                           student.probe("state_dict", cell).items()})
    c = np.full((2, 4), 2.0, np.float32)
    h, c_new = lstm(student.tensor(x), (student.tensor(np.zeros((2, 4), np.float32)),
                                        student.tensor(c)))
    # all gates at sigmoid(0) = 0.5, g = tanh(0) = 0: c' = 0.5 c, h' = 0.5 tanh(c')
    np.testing.assert_allclose(c_new, 1.0, rtol=1e-6)
    np.testing.assert_allclose(h, 0.5 * np.tanh(1.0), rtol=1e-6)
    out = gru(student.tensor(x), student.tensor(np.full((2, 4), 3.0, np.float32)))
    # z = 0.5, n = tanh(0) = 0: h' = 0.5 * h
    np.testing.assert_allclose(out, 1.5, rtol=1e-6)
