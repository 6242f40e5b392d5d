"""LSTM and GRU cells in PyTorch, with the parameters and gate order of ``nn.LSTMCell``
and ``nn.GRUCell``.

Write them from tensor operations (``@``, ``torch.sigmoid``, ``torch.tanh``); using
``nn.LSTMCell``, ``nn.GRUCell``, ``nn.LSTM`` or ``nn.GRU`` (or their functional forms) is
not what is asked. Inputs are batched: ``x`` of shape (N, input_size).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _init_uniform(module: nn.Module, hidden_size: int) -> None:
    """Every parameter uniform in ``[-1/sqrt(hidden_size), 1/sqrt(hidden_size)]`` (as torch)."""
    bound = 1.0 / math.sqrt(hidden_size)
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-bound, bound)


class LSTMCell(nn.Module):
    """One LSTM step, as ``nn.LSTMCell`` (gates in torch's order i, f, g, o)::

        gates = x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh     (N, 4H)
        i, f, g, o = the four chunks of H columns of gates, in this order
        i, f, o = sigmoid(i), sigmoid(f), sigmoid(o);  g = tanh(g)
        c' = f * c + i * g
        h' = o * tanh(c')

    Parameters (names and shapes are part of the contract): ``weight_ih`` (4H, I),
    ``weight_hh`` (4H, H), ``bias_ih`` (4H,), ``bias_hh`` (4H,); with ``bias=False``
    there are no bias parameters (``bias_ih`` and ``bias_hh`` are None). All are drawn
    uniformly from ``[-1/sqrt(H), 1/sqrt(H)]``.

    ``forward(x, state=None)``: x (N, I); ``state`` a tuple ``(h, c)`` of (N, H) tensors,
    zeros when None. Returns the tuple ``(h', c')``, each (N, H), of x's dtype.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        raise NotImplementedError("TODO: LSTMCell.__init__")

    def forward(self, x: torch.Tensor,
                state: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError("TODO: LSTMCell.forward")


class GRUCell(nn.Module):
    """One GRU step, as ``nn.GRUCell`` (gates in torch's order r, z, n)::

        gi = x @ weight_ih.T + bias_ih,   gh = h @ weight_hh.T + bias_hh    (N, 3H) each
        r = sigmoid(gi_r + gh_r)                   reset gate
        z = sigmoid(gi_z + gh_z)                   update gate
        n = tanh(gi_n + r * gh_n)                  candidate (r multiplies gh_n, bias included)
        h' = (1 - z) * n + z * h

    Parameters: ``weight_ih`` (3H, I), ``weight_hh`` (3H, H), ``bias_ih`` (3H,),
    ``bias_hh`` (3H,) (None with ``bias=False``), uniform in ``[-1/sqrt(H), 1/sqrt(H)]``.

    ``forward(x, h=None)``: x (N, I), h (N, H) or None for zeros. Returns h' (N, H).
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        raise NotImplementedError("TODO: GRUCell.__init__")

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError("TODO: GRUCell.forward")
