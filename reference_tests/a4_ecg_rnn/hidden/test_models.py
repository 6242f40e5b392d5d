"""Hidden: the recurrent tagger and the Transformer against the grader's forward pass,
with weights chosen here and loaded by the documented names; padding masks, causality
(and its absence), dropout, attention weights.

Batch sizes, lengths, padding, layers and sizes are drawn by Hypothesis (derandomized, no
deadline, bounded examples). Logits at padded time points are not compared: the contract
leaves them open.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autograder.errors import StudentError

pytestmark = [pytest.mark.visibility("after_published")]

SHAPES = settings(derandomize=True, deadline=None, max_examples=6, database=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture,
                                         HealthCheck.too_slow])


def _eval(student, model):
    student.probe("set_mode", model, False)


def _train(student, model):
    student.probe("set_mode", model, True)


def _masked(what, got, expected, mask, ref, **kw):
    got = ref.array(got, what)
    assert got.shape == expected.shape, f"{what} has shape {got.shape}, expected {expected.shape}"
    ref.assert_logits(what, got[mask], expected[mask])
    ref.assert_close(what + " (real time points)", got[mask], expected[mask], **kw)


def _send(student, x, mask):
    return student.tensor(x), (None if mask is None else student.tensor(mask))


# ---------------------------------------------------------------- recurrent tagger


@pytest.mark.points(3)
@pytest.mark.tags("shapes", "rnn_tagger")
@SHAPES
@given(cell=st.sampled_from(["lstm", "gru"]), layers=st.integers(1, 3), bi=st.booleans(),
       hid=st.integers(1, 5), n=st.integers(1, 3), t=st.integers(1, 6), c=st.integers(1, 4),
       data=st.data())
def test_rnn_tagger_forward(student, ref, load_random_state, padded_batch, cell, layers, bi, hid, n, t, c,
                            data):
    """RNNTagger: its documented layers for any cell, depth, direction, batch and padding"""
    models = student.module("models")
    what = (f"models.RNNTagger({c}, {hid}, num_layers={layers}, cell={cell!r}, "
            f"bidirectional={bi})")
    model = models.RNNTagger(c, hid, num_layers=layers, cell=cell, bidirectional=bi)
    rng = np.random.default_rng([layers, hid, n, t, c, int(bi), len(cell)])
    state = load_random_state(model, ref.rnn_tagger_shapes(cell, c, hid, layers, bi), rng, what)
    _eval(student, model)
    lengths = data.draw(st.lists(st.integers(1, t), min_size=n, max_size=n), label="lengths")
    x, mask = padded_batch(rng, lengths, t, c, fill=3.0)
    out = model(*_send(student, x, mask))
    expected = ref.rnn_tagger(state, x, mask, cell, hid, layers, bi)
    _masked(f"{what} on x {x.shape}, lengths {lengths}", out, expected, mask, ref,
            hint="logits (N, T); the backward direction starts at each record's last real point")
    out = model(student.tensor(x))
    ref.assert_close(f"{what} without a mask", out,
                     ref.rnn_tagger(state, x, None, cell, hid, layers, bi))


@pytest.mark.points(2)
@pytest.mark.tags("shapes", "rnn_tagger")
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_rnn_tagger_ignores_padding(student, cell):
    """RNNTagger (bidirectional): logits at real points do not depend on the padding"""
    models = student.module("models")
    student.probe("manual_seed", 0)
    model = models.RNNTagger(3, 4, num_layers=2, cell=cell, bidirectional=True)
    _eval(student, model)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 9, 3)).astype(np.float32)
    alone = np.asarray(model(student.tensor(x[:, :6])))
    for fill in (0.0, 5.0):
        padded = x.copy()
        padded[:, 6:] = fill
        mask = np.zeros((1, 9), bool)
        mask[:, :6] = True
        out = np.asarray(model(student.tensor(padded), student.tensor(mask)))
        np.testing.assert_allclose(out[:, :6], alone, rtol=1e-5, atol=1e-6, err_msg=(
            f"RNNTagger(cell={cell!r}, bidirectional=True): a record of 6 points padded to 9 "
            f"(padding {fill}) gives other logits than the record alone: the backward "
            "direction must start at the last real point (keep the state over the padding)"))


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "causality")
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_rnn_tagger_is_causal(student, cell):
    """Unidirectional RNNTagger: causal is True and the logit at t ignores inputs after t"""
    models = student.module("models")
    student.probe("manual_seed", 0)
    model = models.RNNTagger(2, 5, num_layers=2, cell=cell, bidirectional=False)
    _eval(student, model)
    assert student.getattr(model, "causal") is True, "RNNTagger(bidirectional=False).causal"
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 8, 2)).astype(np.float32)
    base = np.asarray(model(student.tensor(x)))
    for t in (2, 5):
        y = x.copy()
        y[:, t + 1:] = rng.standard_normal(y[:, t + 1:].shape)
        out = np.asarray(model(student.tensor(y)))
        np.testing.assert_allclose(out[:, :t + 1], base[:, :t + 1], rtol=1e-6, atol=1e-7,
                                   err_msg=f"changing x after t={t} changed the logits up to t")
        assert not np.allclose(out[:, t + 1:], base[:, t + 1:]), (
            "changing the inputs after t changed no later logit")


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "causality")
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_bidirectional_is_not_causal(student, cell):
    """Bidirectional RNNTagger: causal is False and the logit at t sees inputs after t"""
    models = student.module("models")
    student.probe("manual_seed", 0)
    model = models.RNNTagger(2, 5, num_layers=1, cell=cell, bidirectional=True)
    _eval(student, model)
    assert student.getattr(model, "causal") is False, "RNNTagger(bidirectional=True).causal"
    x = np.random.default_rng(4).standard_normal((2, 8, 2)).astype(np.float32)
    base = np.asarray(model(student.tensor(x)))
    y = x.copy()
    y[:, -1] += 1.0
    out = np.asarray(model(student.tensor(y)))
    assert np.abs(out[:, 0] - base[:, 0]).max() > 1e-6, (
        "bidirectional: the first logit does not change when the last input does: is the "
        "backward direction read in reverse and its outputs re-reversed and concatenated?")


@pytest.mark.points(2)
@pytest.mark.tags("shapes", "dropout")
def test_rnn_tagger_dropout_in_training_only(student, ref, load_random_state, rng):
    """RNNTagger(dropout=p): between layers in training mode only"""
    models = student.module("models")
    model = models.RNNTagger(3, 6, num_layers=2, cell="gru", bidirectional=False, dropout=0.5)
    state = load_random_state(model, ref.rnn_tagger_shapes("gru", 3, 6, 2, False), rng,
                              "RNNTagger(dropout=0.5)")
    x = rng.standard_normal((3, 7, 3)).astype(np.float32)
    expected = ref.rnn_tagger(state, x, None, "gru", 6, 2, False)
    _eval(student, model)
    ref.assert_close("RNNTagger(dropout=0.5) in eval mode", model(student.tensor(x)), expected,
                     hint="no dropout in evaluation mode")
    _train(student, model)
    a = np.asarray(student.probe("seeded_call", 1, model, student.tensor(x)))
    b = np.asarray(student.probe("seeded_call", 2, model, student.tensor(x)))
    assert not np.allclose(a, b), (
        "RNNTagger(num_layers=2, dropout=0.5) in training mode gives the same logits with two "
        "different seeds: no dropout between the layers")
    single = models.RNNTagger(3, 6, num_layers=1, cell="gru", dropout=0.5)
    state1 = load_random_state(single, ref.rnn_tagger_shapes("gru", 3, 6, 1, False), rng,
                               "RNNTagger(num_layers=1, dropout=0.5)")
    _train(student, single)
    ref.assert_close("RNNTagger(num_layers=1, dropout=0.5) in training mode",
                     student.probe("seeded_call", 1, single, student.tensor(x)),
                     ref.rnn_tagger(state1, x, None, "gru", 6, 1, False),
                     hint="dropout acts on the output of every layer but the last")


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "rnn_tagger")
def test_rnn_tagger_unknown_cell(student):
    """RNNTagger(cell='rnn') raises ValueError"""
    models = student.module("models")
    with pytest.raises(StudentError) as info:
        models.RNNTagger(2, 3, cell="rnn")
    assert info.value.type_name == "ValueError", (
        f"RNNTagger(cell='rnn') raised {info.value.type_name}, expected ValueError")


# ---------------------------------------------------------------- attention and Transformer


@pytest.mark.points(2)
@pytest.mark.tags("shapes", "attention")
@SHAPES
@given(nhead=st.sampled_from([1, 2, 4]), dh=st.integers(1, 3), n=st.integers(1, 3),
       t=st.integers(1, 7), data=st.data())
def test_attention(student, ref, load_random_state, padded_batch, nhead, dh, n, t, data):
    """Self-attention: values and weights of the definition; rows sum to 1, padding gets 0"""
    models = student.module("models")
    d = nhead * dh
    attn = models.MultiHeadSelfAttention(d, nhead)
    rng = np.random.default_rng([nhead, dh, n, t])
    p = load_random_state(attn, ref.attention_shapes(d), rng,
                          f"models.MultiHeadSelfAttention({d}, {nhead})")
    lengths = data.draw(st.lists(st.integers(1, t), min_size=n, max_size=n), label="lengths")
    x, mask = padded_batch(rng, lengths, t, d, fill=2.0)
    result = attn(*_send(student, x, mask))
    assert isinstance(result, tuple | list) and len(result) == 2, "expected (out, weights)"
    out, weights = result
    e_out, e_w = ref.attention(p, x, mask, nhead)
    w = ref.array(weights, "attention weights")
    assert w.shape == (n, nhead, t, t), f"attention weights have shape {w.shape}"
    np.testing.assert_allclose(w.sum(axis=-1), 1.0, rtol=1e-5, err_msg="rows must sum to one")
    padded_keys = ~mask[:, None, None, :] & np.ones_like(w, bool)
    assert np.all(w[padded_keys] == 0), "padded time points must get exactly zero weight as keys"
    ref.assert_close("attention weights", w, e_w)
    ref.assert_close("attention output", out, e_out,
                     hint="q, k, v are the three thirds of qkv(x); heads of d_model // nhead")


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "attention")
def test_attention_heads_must_divide(student):
    """MultiHeadSelfAttention(d_model, nhead) with nhead not dividing d_model: ValueError"""
    models = student.module("models")
    with pytest.raises(StudentError) as info:
        models.MultiHeadSelfAttention(6, 4)
    assert info.value.type_name == "ValueError", info.value.type_name


@pytest.mark.points(3)
@pytest.mark.tags("shapes", "transformer")
@SHAPES
@given(nhead=st.sampled_from([1, 2]), dh=st.integers(1, 4), layers=st.integers(1, 2),
       ff=st.integers(1, 6), kernel=st.sampled_from([1, 3, 5]), n=st.integers(1, 3),
       t=st.integers(1, 7), c=st.integers(1, 4), data=st.data())
def test_transformer_forward(student, ref, load_random_state, padded_batch, nhead, dh, layers, ff, kernel,
                             n, t, c, data):
    """TransformerTagger: pre-LN blocks, positional embedding, padding mask, any config"""
    models = student.module("models")
    d, max_len = nhead * dh, 11
    what = (f"models.TransformerTagger({c}, d_model={d}, nhead={nhead}, num_layers={layers}, "
            f"dim_feedforward={ff}, max_len={max_len}, kernel_size={kernel})")
    model = models.TransformerTagger(c, d_model=d, nhead=nhead, num_layers=layers,
                                     dim_feedforward=ff, dropout=0.2, max_len=max_len,
                                     kernel_size=kernel)
    rng = np.random.default_rng([nhead, dh, layers, ff, kernel, n, t, c])
    state = load_random_state(model, ref.transformer_shapes(c, d, layers, ff, max_len, kernel),
                              rng, what)
    _eval(student, model)
    lengths = data.draw(st.lists(st.integers(1, t), min_size=n, max_size=n), label="lengths")
    x, mask = padded_batch(rng, lengths, t, c, fill=-4.0)
    out = model(*_send(student, x, mask))
    _masked(f"{what} on x {x.shape}, lengths {lengths} (eval mode)", out,
            ref.transformer(state, x, mask, nhead, layers), mask, ref,
            hint="x + drop(attn(ln1(x))), then x + drop(ff(ln2(x))); final norm, then out")
    ref.assert_close(f"{what} without a mask", model(student.tensor(x)),
                     ref.transformer(state, x, None, nhead, layers))


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "transformer")
def test_transformer_ignores_padding(student):
    """TransformerTagger: logits at real points do not depend on the padding"""
    models = student.module("models")
    student.probe("manual_seed", 0)
    model = models.TransformerTagger(3, d_model=8, nhead=2, num_layers=2, dim_feedforward=8)
    _eval(student, model)
    x = np.random.default_rng(5).standard_normal((1, 10, 3)).astype(np.float32)
    alone = np.asarray(model(student.tensor(x[:, :7])))
    for fill in (0.0, 3.0):
        padded = x.copy()
        padded[:, 7:] = fill
        mask = np.arange(10)[None] < 7
        out = np.asarray(model(student.tensor(padded), student.tensor(mask)))
        np.testing.assert_allclose(out[:, :7], alone, rtol=1e-4, atol=1e-5, err_msg=(
            f"TransformerTagger: a record of 7 points padded to 10 (padding {fill}) gives "
            "other logits than the record alone: mask the padded keys, zero padded inputs"))


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "causality")
def test_transformer_is_not_causal(student):
    """TransformerTagger: causal is False and the first logit sees the last input"""
    models = student.module("models")
    student.probe("manual_seed", 0)
    model = models.TransformerTagger(2, d_model=8, nhead=2, num_layers=1, dim_feedforward=8,
                                     kernel_size=1)
    _eval(student, model)
    assert student.getattr(model, "causal") is False, "TransformerTagger.causal"
    x = np.random.default_rng(6).standard_normal((2, 9, 2)).astype(np.float32)
    base = np.asarray(model(student.tensor(x)))
    y = x.copy()
    y[:, -1] += 2.0
    out = np.asarray(model(student.tensor(y)))
    assert np.abs(out[:, 0] - base[:, 0]).max() > 1e-6, (
        "TransformerTagger: the first logit does not change when the last input does: "
        "attention is non-causal (no causal mask)")


@pytest.mark.points(2)
@pytest.mark.tags("shapes", "dropout")
def test_transformer_dropout_in_training_only(student, ref, load_random_state, rng):
    """TransformerTagger(dropout=p): active in training mode, off in evaluation mode"""
    models = student.module("models")
    model = models.TransformerTagger(3, d_model=8, nhead=2, num_layers=1, dim_feedforward=8,
                                     dropout=0.3, max_len=16, kernel_size=3)
    state = load_random_state(model, ref.transformer_shapes(3, 8, 1, 8, 16, 3), rng,
                              "TransformerTagger(dropout=0.3)")
    x = rng.standard_normal((2, 6, 3)).astype(np.float32)
    _eval(student, model)
    ref.assert_close("TransformerTagger(dropout=0.3) in eval mode", model(student.tensor(x)),
                     ref.transformer(state, x, None, 2, 1))
    _train(student, model)
    a = np.asarray(student.probe("seeded_call", 1, model, student.tensor(x)))
    b = np.asarray(student.probe("seeded_call", 2, model, student.tensor(x)))
    assert not np.allclose(a, b), (
        "TransformerTagger(dropout=0.3) in training mode gives the same logits with two "
        "different seeds: dropout is missing")


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "models")
def test_models_keep_inputs(student):
    """Both taggers leave their inputs and masks unchanged"""
    models = student.module("models")
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 6, 3)).astype(np.float32)
    mask = np.arange(6)[None] < np.array([[6], [4]])
    for name, model in (
            ("RNNTagger", models.RNNTagger(3, 4, bidirectional=True)),
            ("TransformerTagger", models.TransformerTagger(3, d_model=8, nhead=2))):
        hx, hm = student.put(student.tensor(x)), student.put(student.tensor(mask))
        student.call(model, hx, hm, want="none")
        assert np.array_equal(student.fetch(hx), x), f"{name} modified its input"
        assert np.array_equal(student.fetch(hm), mask), f"{name} modified its mask"
