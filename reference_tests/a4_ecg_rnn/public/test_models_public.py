"""Public tests for models.py and train.py: shapes, a causality check, known loss values
and a small decoding example.

Run them with `autograder check a4`. The hidden tests compare both taggers value by value
with the graders' own forward pass, check padding, dropout and attention weights, the
training loop's contract, and train LSTM, GRU and Transformer taggers on ECG records the
graders keep to themselves.
"""

import numpy as np
import pytest

pytestmark = [pytest.mark.visibility("visible")]


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "models")
def test_tagger_output_shapes(student):
    """RNNTagger and TransformerTagger return logits (N, T)"""
    models = student.module("models")
    x = np.random.default_rng(0).standard_normal((3, 11, 4)).astype(np.float32)
    mask = np.arange(11)[None] < np.array([[11], [6], [2]])
    for name, model in (
            ("RNNTagger(4, 8, num_layers=2, bidirectional=True)",
             models.RNNTagger(4, 8, num_layers=2, cell="gru", bidirectional=True)),
            ("TransformerTagger(4)", models.TransformerTagger(4))):
        for m in (None, mask):
            out = model(student.tensor(x)) if m is None else model(student.tensor(x),
                                                                    student.tensor(m))
            assert isinstance(out, np.ndarray) and out.shape == (3, 11), (
                f"{name} returned {type(out).__name__} {np.shape(out)}, expected (3, 11)")


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "causality")
def test_unidirectional_is_causal(student):
    """A unidirectional RNNTagger's logit at t does not change when later inputs change"""
    models = student.module("models")
    model = models.RNNTagger(2, 4, cell="lstm")
    x = np.random.default_rng(1).standard_normal((1, 6, 2)).astype(np.float32)
    y = x.copy()
    y[:, 4:] = 0.0
    a, b = model(student.tensor(x)), model(student.tensor(y))
    np.testing.assert_allclose(a[:, :4], b[:, :4], rtol=1e-6)


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "loss")
def test_bce_loss_known_values(student):
    """bce_loss: log 2 at logits 0; padded points are not averaged in"""
    train = student.module("train")
    z = np.zeros((2, 4), np.float32)
    y = np.array([[1, 0, 1, 0], [0, 0, 0, 0]], np.float32)
    got = float(train.bce_loss(student.tensor(z), student.tensor(y)))
    assert got == pytest.approx(np.log(2), rel=1e-6)
    z[1, 2:] = 50.0  # large losses at padded points
    mask = np.array([[True] * 4, [True, True, False, False]])
    got = float(train.bce_loss(student.tensor(z), student.tensor(y), student.tensor(mask)))
    assert got == pytest.approx(np.log(2), rel=1e-6), "the padded points were averaged in"


@pytest.mark.points(1)
@pytest.mark.tags("convergence", "decoder")
def test_pick_peaks_example(student):
    """pick_peaks: two clear peaks and a smaller one inside the refractory window"""
    train = student.module("train")
    p = np.zeros((1, 40))
    p[0, [9, 10, 11]] = [0.6, 0.9, 0.7]
    p[0, 14] = 0.8  # within 10 samples of the peak at 10: suppressed
    p[0, 30] = 0.95
    got = train.pick_peaks(p)
    assert [np.asarray(g).tolist() for g in got] == [[10, 30]]
