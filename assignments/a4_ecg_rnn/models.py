"""Sequence models that give a trigger logit for every time point of a multi-lead signal:
a multi-layer, optionally bidirectional recurrent tagger built on your cells, and a
pre-LayerNorm Transformer encoder.

Inputs are ``x`` float (N, T, C) (batch, time, leads) and an optional padding ``mask``,
bool (N, T), True at the real time points of each record and False at its padding, which
comes after them (a record of length L has ``mask[i, :L]`` True and ``mask[i, L:]``
False, L >= 1). Both models return logits (N, T); the logits at padded positions are
not used by anyone, but the logits at real positions must not depend on the padding
(its values or how much of it there is). Neither model modifies its inputs.

Both models check their inputs first (:func:`check_batch`) and raise ``ValueError`` for
inputs of the wrong rank, number of leads or length, saying what they expected.
"""

from __future__ import annotations

import math

import torch
from cells import GRUCell, LSTMCell
from torch import nn

CELLS = {"lstm": LSTMCell, "gru": GRUCell}


def check_batch(x: torch.Tensor, mask: torch.Tensor | None, input_size: int,
                max_len: int | None = None) -> None:
    """Raise ``ValueError`` (with a message saying what was expected and what came) unless
    ``x`` is a batch ``(N, T, input_size)``, ``mask`` is None or of shape ``(N, T)``, and
    ``T <= max_len`` when ``max_len`` is given.

    Both taggers call it first in ``forward``: a single record without its batch axis
    ``(T, C)``, the wrong number of leads, a mask of another length or a record longer
    than the positional embedding then fail at once with a clear message, instead of a
    broadcasting error deep inside the model, or silently wrong logits.
    """
    raise NotImplementedError("TODO: check_batch")


class RNNTagger(nn.Module):
    """``num_layers`` recurrent layers of ``cells.CELLS[cell]`` and a linear head.

    input_size: leads C. hidden_size: H, per direction. cell: ``"lstm"`` or ``"gru"``
    (anything else raises ``ValueError``). bidirectional: a second stack of cells reads
    each record backwards (from its last real time point to the first), and each layer
    outputs the concatenation ``[forward state, backward state]`` (2H features) at every
    time point. dropout: probability of ``nn.Dropout`` applied to the output of every
    layer but the last (as ``nn.LSTM``), in training mode only.

    Submodules (names are part of the contract)::

        fwd[l]  = CELLS[cell](C if l == 0 else D * H, H)     l = 0 .. num_layers - 1
        bwd[l]  = the same                                    only when bidirectional
        drop    = nn.Dropout(dropout)
        head    = nn.Linear(D * H, 1)                         D = 2 if bidirectional else 1

    ``fwd`` and ``bwd`` are ``nn.ModuleList``s (``bwd`` is None when not bidirectional).
    Every layer starts from zero states. The forward direction reads t = 0 .. T-1; the
    backward one reads t = T-1 .. 0 and stays at its zero state over the padding, so its
    output at a real time point t depends on x[t:L] only. ``forward(x, mask=None)``
    returns the logits ``head(output of the last layer)`` squeezed to (N, T); it starts
    with ``check_batch(x, mask, input_size)`` (``ValueError`` for a bad shape).

    ``causal`` (attribute): True when the logit at t depends on ``x[:, :t+1]`` only,
    i.e. when not bidirectional.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 cell: str = "lstm", bidirectional: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        raise NotImplementedError("TODO: RNNTagger.__init__")

    def _direction(self, cell: nn.Module, x: torch.Tensor, mask: torch.Tensor | None,
                   reverse: bool) -> torch.Tensor:
        """A helper you may use: the outputs (N, T, H) of ``cell`` run over ``x`` (N, T, in)
        forwards (``reverse=False``) or backwards, from zero states, keeping the state
        unchanged where ``mask`` is False."""
        raise NotImplementedError("TODO: RNNTagger._direction")

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError("TODO: RNNTagger.forward")


class MultiHeadSelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention (non-causal: every position attends to
    every real position, earlier and later).

    Submodules: ``qkv = nn.Linear(d_model, 3 * d_model)`` (its output columns are the
    queries, keys and values, in this order, each split into ``nhead`` heads of
    ``d_model // nhead`` consecutive features), ``proj = nn.Linear(d_model, d_model)``.
    ``d_model`` must be divisible by ``nhead`` (else ``ValueError``)::

        q, k, v = split(qkv(x))                               (N, nhead, T, dh) each
        weights = softmax(q @ k^T / sqrt(dh)) over the keys    (N, nhead, T, T)
        out     = proj(concat over heads of weights @ v)        (N, T, d_model)

    ``forward(x, mask=None)``: x (N, T, d_model); ``mask`` bool (N, T), False at padded
    time points, which get zero weight as keys (their weights are exactly 0 and every row
    still sums to one). Returns ``(out, weights)``.
    """

    def __init__(self, d_model: int, nhead: int) -> None:
        super().__init__()
        raise NotImplementedError("TODO: MultiHeadSelfAttention.__init__")

    def forward(self, x: torch.Tensor,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError("TODO: MultiHeadSelfAttention.forward")


class TransformerBlock(nn.Module):
    """A pre-LayerNorm encoder block::

        x = x + drop(attn(ln1(x), mask)[0])
        x = x + drop(ff(ln2(x)))           ff = Linear(d, F) - ReLU - Linear(F, d)

    Submodules: ``ln1``, ``ln2`` (``nn.LayerNorm(d_model)``), ``attn``
    (:class:`MultiHeadSelfAttention`), ``ff = nn.Sequential(nn.Linear(d_model,
    dim_feedforward), nn.ReLU(), nn.Linear(dim_feedforward, d_model))``,
    ``drop = nn.Dropout(dropout)``.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int,
                 dropout: float = 0.0) -> None:
        super().__init__()
        raise NotImplementedError("TODO: TransformerBlock.__init__")

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError("TODO: TransformerBlock.forward")


class TransformerTagger(nn.Module):
    """A Transformer encoder that tags every time point::

        x = x * mask[..., None]             padded inputs set to zero (when a mask is given)
        h = drop(inp(x) + pos(t))           t = 0 .. T-1, a learned positional embedding
        h = blocks[0](h, mask) .. blocks[num_layers - 1](h, mask)
        logits = out(norm(h)).squeeze(-1)   (N, T)

    The input projection ``inp`` is local: ``nn.Conv1d(input_size, d_model, kernel_size,
    padding=kernel_size // 2)`` over time (``kernel_size`` odd, >= 1; 1 is a per-time-point
    linear map), applied to x transposed to (N, C, T) and transposed back, so that each
    token sees the waveform around its time point. Submodules: ``inp``, ``pos = nn.Embedding(max_len,
    d_model)``, ``drop = nn.Dropout(dropout)``, ``blocks`` an ``nn.ModuleList`` of
    ``num_layers`` :class:`TransformerBlock` (d_model, nhead, dim_feedforward, dropout),
    ``norm = nn.LayerNorm(d_model)`` (the final LayerNorm of a pre-LN encoder),
    ``out = nn.Linear(d_model, 1)``. Records up to ``max_len`` time points.
    Dropout acts in training mode only. ``causal`` (attribute) is False. ``forward``
    starts with ``check_batch(x, mask, input_size, max_len)`` (``ValueError`` for a bad
    shape or a record longer than ``max_len``).
    """

    def __init__(self, input_size: int, d_model: int = 32, nhead: int = 4,
                 num_layers: int = 2, dim_feedforward: int = 64, dropout: float = 0.1,
                 max_len: int = 1024, kernel_size: int = 5) -> None:
        super().__init__()
        raise NotImplementedError("TODO: TransformerTagger.__init__")

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError("TODO: TransformerTagger.forward")
