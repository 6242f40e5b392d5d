"""Hidden: bad input fails early and clearly (the ValueErrors the docstrings promise).

A record without its batch axis, the wrong number of leads, a mask of another length, a
record longer than the Transformer's positional embedding, targets that would broadcast
against the logits, a probability array of the wrong rank. Bad *output* (probabilities
outside [0, 1], logits that look like probabilities, nan) is named by the grader's checks
of returned values in the other files (conftest.Ref.probabilities, Ref.assert_logits), a
training loop that never returns by the harness's timeout message.
"""

import numpy as np
import pytest

pytestmark = [pytest.mark.visibility("after_published")]


def _x(n, t, c, seed=0):
    return np.random.default_rng(seed).standard_normal((n, t, c)).astype(np.float32)


@pytest.mark.points(2)
@pytest.mark.tags("shapes", "bad_input")
@pytest.mark.parametrize("kind", ["RNNTagger", "TransformerTagger"])
def test_taggers_reject_bad_sequences(student, expect_value_error, kind):
    """Taggers raise ValueError for a record without its batch axis, wrong leads, a mask of another length"""
    models = student.module("models")
    student.probe("manual_seed", 0)
    if kind == "RNNTagger":
        model, what = models.RNNTagger(3, 4, bidirectional=True), "models.RNNTagger(3, 4)"
    else:
        model = models.TransformerTagger(3, d_model=8, nhead=2, num_layers=1,
                                         dim_feedforward=8, max_len=12)
        what = "models.TransformerTagger(3, ..., max_len=12)"
    x = _x(2, 6, 3)
    good = np.asarray(model(student.tensor(x), student.tensor(np.ones((2, 6), bool))))
    assert good.shape == (2, 6), f"{what} on x (2, 6, 3) returned shape {good.shape}, expected (2, 6)"
    cases = [
        ("x of shape (6, 3), a record without its batch axis", (x[0], None),
         "x must be (N, T, C); a single record is x[None]"),
        ("x of shape (2, 6, 5), 5 leads for input_size 3", (_x(2, 6, 5), None),
         "the last axis of x holds the input_size leads"),
        ("x of shape (2, 6, 3, 1)", (x[..., None], None), "x must be (N, T, C)"),
        ("x (2, 6, 3) and a mask of shape (2, 8)", (x, np.ones((2, 8), bool)),
         "the mask must be (N, T) like x"),
        ("x (2, 6, 3) and a mask of shape (6,)", (x, np.ones(6, bool)),
         "the mask must be (N, T) like x"),
    ]
    if kind == "TransformerTagger":
        cases.append(("x of shape (1, 13, 3), longer than max_len=12", (_x(1, 13, 3), None),
                      "records of at most max_len time points (the positional embedding)"))
    for label, (xb, mask), expected in cases:
        args = [student.tensor(xb)] + ([] if mask is None else [student.tensor(mask)])
        expect_value_error(lambda args=args: model(*args), f"{what} on {label}", expected)


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "bad_input")
def test_bce_loss_rejects_mismatched_shapes(student, expect_value_error):
    """bce_loss raises ValueError when targets or mask do not have the logits' shape"""
    train = student.module("train")
    rng = np.random.default_rng(3)
    z = rng.standard_normal((2, 5))
    y = (rng.random((2, 5)) < 0.3).astype(np.float64)
    mask = np.ones((2, 5), bool)
    cases = [
        ("logits (2, 5, 1) and targets (2, 5)", (z[..., None], y, None)),
        ("logits (2, 5) and targets (2, 5, 1)", (z, y[..., None], None)),
        ("logits (2, 5) and targets (2, 1)", (z, y[:, :1], None)),
        ("logits (2, 5), targets (2, 5) and a mask (2, 1)", (z, y, mask[:, :1])),
        ("logits (2, 5), targets (2, 5) and a mask (5,)", (z, y, mask[0])),
    ]
    for label, (a, b, m) in cases:
        args = [student.tensor(a), student.tensor(b)] + ([] if m is None else [student.tensor(m)])
        expect_value_error(lambda args=args: train.bce_loss(*args), f"train.bce_loss on {label}",
                           "targets and mask must have the shape of the logits (no broadcasting)")


@pytest.mark.points(1)
@pytest.mark.tags("convergence", "bad_input")
def test_pick_peaks_rejects_bad_rank(student, expect_value_error):
    """pick_peaks raises ValueError for probabilities that are not (N, T)"""
    train = student.module("train")
    p = np.zeros((2, 30))
    p[:, 10] = 0.9
    got = train.pick_peaks(p)
    assert [np.asarray(g).tolist() for g in got] == [[10], [10]], (
        f"pick_peaks on (2, 30) probabilities with one peak at 10 gave {got}")
    for label, value in (("probs of shape (30,), a record without its batch axis", p[0]),
                         ("probs of shape (2, 30, 1)", p[..., None])):
        expect_value_error(lambda value=value: train.pick_peaks(value),
                           f"train.pick_peaks on {label}",
                           "probs must be (N, T); a single record is probs[None]")
