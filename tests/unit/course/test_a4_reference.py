"""A4's grader-side reference (reference_tests/a4_ecg_rnn/conftest.py, ``Ref``) against
torch's own modules and the official generator's helpers.

The hidden suite compares students' cells with ``Ref.lstm_cell`` / ``Ref.gru_cell``,
written in numpy from torch's equations; these tests prove that those equations, gate
order included, are torch's: ``nn.LSTMCell`` and ``nn.GRUCell`` with the same weights
give the same outputs. The attention reference is checked against
``nn.MultiheadAttention`` (same packed projection layout), the F1 against
``ecg_data.f1_score``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[3]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ref():
    return _load("_a4_conftest_under_test", ROOT / "reference_tests" / "a4_ecg_rnn" / "conftest.py").Ref


def _state(module) -> dict[str, np.ndarray]:
    return {k: v.detach().double().numpy() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("bias", [True, False])
def test_lstm_cell_is_torchs(ref, bias):
    torch.manual_seed(0)
    cell = torch.nn.LSTMCell(3, 5, bias=bias).double()
    x, h, c = torch.randn(4, 3).double(), torch.randn(4, 5).double(), torch.randn(4, 5).double()
    h2, c2 = cell(x, (h, c))
    eh, ec = ref.lstm_cell(x.numpy(), h.numpy(), c.numpy(), _state(cell))
    np.testing.assert_allclose(eh, h2.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ec, c2.detach().numpy(), rtol=1e-12, atol=1e-12)
    assert set(_state(cell)) == set(ref.cell_shapes("lstm", 3, 5, bias))


@pytest.mark.parametrize("bias", [True, False])
def test_gru_cell_is_torchs(ref, bias):
    torch.manual_seed(1)
    cell = torch.nn.GRUCell(3, 5, bias=bias).double()
    x, h = torch.randn(4, 3).double(), torch.randn(4, 5).double()
    expected = cell(x, h).detach().numpy()
    np.testing.assert_allclose(ref.gru_cell(x.numpy(), h.numpy(), _state(cell)), expected,
                               rtol=1e-12, atol=1e-12)


def test_attention_is_torchs_multihead_attention(ref):
    torch.manual_seed(2)
    d, nhead = 8, 2
    mha = torch.nn.MultiheadAttention(d, nhead, batch_first=True).double()
    x = torch.randn(3, 6, d).double()
    mask = torch.arange(6)[None] < torch.tensor([[6], [4], [1]])
    out, w = mha(x, x, x, key_padding_mask=~mask, average_attn_weights=False)
    sd = _state(mha)
    p = {"qkv.weight": sd["in_proj_weight"], "qkv.bias": sd["in_proj_bias"],
         "proj.weight": sd["out_proj.weight"], "proj.bias": sd["out_proj.bias"]}
    e_out, e_w = ref.attention(p, x.numpy(), mask.numpy(), nhead)
    np.testing.assert_allclose(e_w, w.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(e_out, out.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_f1_matches_official_scorer_without_edges(ref):
    ecg = _load("_a4_ecg_data_under_test", ROOT / "solutions" / "a4_ecg_rnn" / "ecg_data.py")
    rng = np.random.default_rng(3)
    true = [np.sort(rng.choice(100, 4, replace=False)) for _ in range(20)]
    pred = [np.sort(np.clip(t + rng.integers(-3, 4, len(t)), 0, 99))[: rng.integers(2, 5)]
            for t in true]
    assert ref.f1(pred, true, 2, 100, 0) == pytest.approx(ecg.f1_score(pred, true, fs=50))
