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
    # BEGIN SOLUTION
    if x.dim() != 3 or x.shape[-1] != input_size:
        raise ValueError(f"x must be (N, T, {input_size}) (batch, time, leads), "
                         f"got shape {tuple(x.shape)}")
    if mask is not None and tuple(mask.shape) != tuple(x.shape[:2]):
        raise ValueError(f"mask must be (N, T) = {tuple(x.shape[:2])} like x, "
                         f"got shape {tuple(mask.shape)}")
    if max_len is not None and x.shape[1] > max_len:
        raise ValueError(f"records of at most max_len={max_len} time points, got T={x.shape[1]}")
    # END SOLUTION


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
        # BEGIN SOLUTION
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}")
        cls = CELLS[cell]
        dirs = 2 if bidirectional else 1
        sizes = [input_size] + [dirs * hidden_size] * (num_layers - 1)
        self.fwd = nn.ModuleList([cls(s, hidden_size) for s in sizes])
        self.bwd = nn.ModuleList([cls(s, hidden_size) for s in sizes]) if bidirectional else None
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(dirs * hidden_size, 1)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.causal = not bidirectional
        # END SOLUTION

    def _direction(self, cell: nn.Module, x: torch.Tensor, mask: torch.Tensor | None,
                   reverse: bool) -> torch.Tensor:
        """A helper you may use: the outputs (N, T, H) of ``cell`` run over ``x`` (N, T, in)
        forwards (``reverse=False``) or backwards, from zero states, keeping the state
        unchanged where ``mask`` is False."""
        # BEGIN SOLUTION
        n, t_len, _ = x.shape
        zeros = x.new_zeros(n, self.hidden_size)
        lstm = isinstance(cell, LSTMCell)
        state = (zeros, zeros) if lstm else zeros
        outs: list[torch.Tensor] = [zeros] * t_len
        for t in (range(t_len - 1, -1, -1) if reverse else range(t_len)):
            new = cell(x[:, t], state)
            if mask is not None:
                keep = mask[:, t, None]
                if lstm:
                    new = (torch.where(keep, new[0], state[0]), torch.where(keep, new[1], state[1]))
                else:
                    new = torch.where(keep, new, state)
            state = new
            outs[t] = state[0] if lstm else state
        return torch.stack(outs, dim=1)
        # END SOLUTION

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        # BEGIN SOLUTION
        check_batch(x, mask, self.input_size)
        h = x
        for layer in range(self.num_layers):
            out = self._direction(self.fwd[layer], h, mask, reverse=False)
            if self.bwd is not None:
                back = self._direction(self.bwd[layer], h, mask, reverse=True)
                out = torch.cat([out, back], dim=-1)
            h = self.drop(out) if layer < self.num_layers - 1 else out
        return self.head(h).squeeze(-1)
        # END SOLUTION


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
        # BEGIN SOLUTION
        if d_model % nhead:
            raise ValueError(f"d_model={d_model} is not divisible by nhead={nhead}")
        self.nhead = nhead
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        # END SOLUTION

    def forward(self, x: torch.Tensor,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        # BEGIN SOLUTION
        n, t_len, d = x.shape
        dh = d // self.nhead
        q, k, v = self.qkv(x).split(d, dim=-1)
        q, k, v = (z.reshape(n, t_len, self.nhead, dh).transpose(1, 2) for z in (q, k, v))
        scores = q @ k.transpose(-2, -1) / math.sqrt(dh)
        if mask is not None:
            scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(n, t_len, d)
        return self.proj(out), weights
        # END SOLUTION


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
        # BEGIN SOLUTION
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = MultiHeadSelfAttention(d_model, nhead)
        self.ln2 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, dim_feedforward), nn.ReLU(),
                                nn.Linear(dim_feedforward, d_model))
        self.drop = nn.Dropout(dropout)
        # END SOLUTION

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        # BEGIN SOLUTION
        x = x + self.drop(self.attn(self.ln1(x), mask)[0])
        return x + self.drop(self.ff(self.ln2(x)))
        # END SOLUTION


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
        # BEGIN SOLUTION
        self.inp = nn.Conv1d(input_size, d_model, kernel_size, padding=kernel_size // 2)
        self.pos = nn.Embedding(max_len, d_model)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList([TransformerBlock(d_model, nhead, dim_feedforward, dropout)
                                     for _ in range(num_layers)])
        self.norm = nn.LayerNorm(d_model)
        self.out = nn.Linear(d_model, 1)
        self.input_size, self.max_len = input_size, max_len
        self.causal = False
        # END SOLUTION

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        # BEGIN SOLUTION
        check_batch(x, mask, self.input_size, self.max_len)
        if mask is not None:
            x = x * mask[..., None].to(x.dtype)
        t = torch.arange(x.shape[1], device=x.device)
        h = self.drop(self.inp(x.transpose(1, 2)).transpose(1, 2) + self.pos(t))
        for block in self.blocks:
            h = block(h, mask)
        return self.out(self.norm(h)).squeeze(-1)
        # END SOLUTION
