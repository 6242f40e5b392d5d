"""Hidden: the LSTM and GRU cells against torch's equations (gate order i, f, g, o and
r, z, n) with weights chosen by the grader and copied into the student's cell by name.

The grader's reference (conftest.Ref.lstm_cell / gru_cell) is written from the equations
of ``nn.LSTMCell`` and ``nn.GRUCell``; tests/unit/course/test_a4_reference.py checks it
against torch itself.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = [pytest.mark.visibility("after_published")]

SHAPES = settings(derandomize=True, deadline=None, max_examples=5, database=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture,
                                         HealthCheck.too_slow])
CLASSES = {"lstm": "LSTMCell", "gru": "GRUCell"}


@pytest.mark.points(2)
@pytest.mark.tags("shapes", "cells")
@pytest.mark.parametrize("kind", ["lstm", "gru"])
@SHAPES
@given(n=st.integers(1, 5), i=st.integers(1, 6), h=st.integers(1, 7))
def test_cell_matches_torch_equations(student, ref, load_random_state, kind, n, i, h):
    """LSTMCell / GRUCell: torch's equations and gate order with copied weights and a state"""
    cells = student.module("cells")
    what = f"cells.{CLASSES[kind]}({i}, {h})"
    rng = np.random.default_rng([n, i, h, len(kind)])
    cell = getattr(cells, CLASSES[kind])(i, h)
    p = load_random_state(cell, ref.cell_shapes(kind, i, h), rng, what)
    x = rng.standard_normal((n, i)).astype(np.float32)
    h0 = rng.standard_normal((n, h)).astype(np.float32)
    if kind == "lstm":
        c0 = rng.standard_normal((n, h)).astype(np.float32)
        out = cell(student.tensor(x), (student.tensor(h0), student.tensor(c0)))
        assert isinstance(out, tuple | list) and len(out) == 2, (
            f"{what} returned {type(out).__name__}, expected the tuple (h', c')")
        eh, ec = ref.lstm_cell(x, h0, c0, p)
        ref.assert_close(f"{what}: h'", out[0], eh, hint="gates in the order i, f, g, o")
        ref.assert_close(f"{what}: c'", out[1], ec, hint="c' = f * c + i * g")
    else:
        out = cell(student.tensor(x), student.tensor(h0))
        ref.assert_close(f"{what}: h'", out, ref.gru_cell(x, h0, p),
                         hint="gates r, z, n; n = tanh(gi_n + r * gh_n); h' = (1 - z) n + z h")


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "cells")
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_cell_default_state_is_zero(student, ref, load_random_state, rng, kind):
    """A cell called without a state starts from zeros"""
    cells = student.module("cells")
    cell = getattr(cells, CLASSES[kind])(3, 4)
    p = load_random_state(cell, ref.cell_shapes(kind, 3, 4), rng, f"cells.{CLASSES[kind]}")
    x = rng.standard_normal((2, 3)).astype(np.float32)
    out = cell(student.tensor(x))
    z = np.zeros((2, 4))
    if kind == "lstm":
        eh, ec = ref.lstm_cell(x, z, z, p)
        ref.assert_close("LSTMCell(x) h'", out[0], eh)
        ref.assert_close("LSTMCell(x) c'", out[1], ec)
    else:
        ref.assert_close("GRUCell(x)", out, ref.gru_cell(x, z, p))


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "cells")
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_cell_without_bias(student, ref, load_random_state, rng, kind):
    """bias=False: no bias parameters, and the equations without them"""
    cells = student.module("cells")
    cell = getattr(cells, CLASSES[kind])(3, 5, bias=False)
    p = load_random_state(cell, ref.cell_shapes(kind, 3, 5, bias=False), rng,
                          f"cells.{CLASSES[kind]}(3, 5, bias=False)")
    x = rng.standard_normal((4, 3)).astype(np.float32)
    h0 = rng.standard_normal((4, 5)).astype(np.float32)
    if kind == "lstm":
        out = cell(student.tensor(x), (student.tensor(h0), student.tensor(h0)))
        ref.assert_close("LSTMCell(bias=False) h'", out[0], ref.lstm_cell(x, h0, h0, p)[0])
    else:
        out = cell(student.tensor(x), student.tensor(h0))
        ref.assert_close("GRUCell(bias=False)", out, ref.gru_cell(x, h0, p))


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "cells")
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_cell_initialization(student, kind):
    """Cell parameters are uniform in [-1/sqrt(H), 1/sqrt(H)] (as torch's cells)"""
    cells = student.module("cells")
    hid = 64
    student.probe("manual_seed", 0)
    sd = student.probe("state_dict", getattr(cells, CLASSES[kind])(32, hid))
    bound = 1 / np.sqrt(hid)
    for name, v in sd.items():
        v = np.asarray(v, np.float64).ravel()
        assert np.all(np.abs(v) <= bound + 1e-7), (
            f"{CLASSES[kind]}(32, {hid}).{name} has values up to {np.abs(v).max():.3f}, "
            f"outside [-1/sqrt(H), 1/sqrt(H)] = +-{bound:.3f}")
        # uniform: std = bound / sqrt(3); 15 % is > 5 standard errors for 256 values
        assert abs(v.std() - bound / np.sqrt(3)) < 0.15 * bound / np.sqrt(3), (
            f"{CLASSES[kind]}.{name}: standard deviation {v.std():.4f}, expected about "
            f"{bound / np.sqrt(3):.4f} for a uniform draw in +-1/sqrt(H)")
        se_mean = bound / np.sqrt(3 * v.size)
        assert abs(v.mean()) < 6 * se_mean, (
            f"{CLASSES[kind]}.{name}: mean {v.mean():.4f}, expected 0 (a uniform draw in "
            "+-1/sqrt(H))")


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "cells")
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_cell_gradient(student, ref, rng, kind, autograd_check):
    """Cells are differentiable: autograd's input gradient matches central differences"""
    cells = student.module("cells")
    cell = getattr(cells, CLASSES[kind])(3, 4)
    student.call(cell.double, want="none")
    x = rng.standard_normal((2, 3))
    dout = rng.standard_normal((2, 4))
    fn = student.probe_ref("first_output")
    autograd_check(fn, x, (cell,), rng, f"cells.{CLASSES[kind]} (h')", dout=dout)
