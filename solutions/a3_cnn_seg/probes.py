"""Assignment 3's own probes: helpers the grader runs next to your objects, and the
yardsticks of the performance tests.

They run in the worker and return plain data; you can read them and call them yourself.
The yardsticks are timed in a worker that never loads your code, and the grader compares
your function's time with theirs (a ratio, so the machine's speed cancels out). torch
functions are bound here at import, before any submission code runs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from autograder.probes import probe

_softmax = torch.softmax
_arange = torch.arange
_einsum = torch.einsum
_as_tensor = torch.as_tensor
_no_grad = torch.no_grad
_named_parameters = nn.Module.named_parameters
_named_buffers = nn.Module.named_buffers
_named_modules = nn.Module.named_modules


@probe("input_grad", calls=0)
def input_grad(fn: Any, x: torch.Tensor, *args: Any, dout: Any = None, **kwargs: Any) -> Any:
    """Autograd's gradient of ``sum(fn(x, *args, **kwargs) * dout)`` with respect to ``x``
    (``dout`` None: ``fn`` returns a scalar). ``None`` when ``x`` got no gradient."""
    x = x.detach().clone().requires_grad_(True)
    out = fn(x, *args, **kwargs)
    if dout is None:
        total = out.sum()
    else:
        total = (out * _as_tensor(dout, dtype=out.dtype, device=out.device)).sum()
    total.backward()
    return None if x.grad is None else x.grad.detach()


@probe("load_state")
def load_state(module: nn.Module, state: dict[str, Any]) -> list[str]:
    """Copy ``state`` (name -> array) into the module's parameters and buffers of those
    names (shapes must match); returns the names of the module's parameters and buffers
    that ``state`` did not cover."""
    own = dict(_named_parameters(module))
    own.update(dict(_named_buffers(module)))
    with _no_grad():
        for name, value in state.items():
            if name not in own:
                raise KeyError(f"the module has no parameter or buffer {name!r}")
            target = own[name]
            value = _as_tensor(value)
            if tuple(value.shape) != tuple(target.shape):
                raise ValueError(f"{name}: shape {tuple(target.shape)}, got {tuple(value.shape)}")
            target.copy_(value.to(target.dtype))
    return sorted(set(own) - set(state))


@probe("conv_layers")
def conv_layers(module: nn.Module) -> list[dict[str, Any]]:
    """Every ``nn.Conv2d`` / ``nn.ConvTranspose2d`` inside ``module``, in registration
    order: name, kind, channels, kernel, stride, padding, groups and whether it has a bias."""
    found = []
    for name, m in _named_modules(module):
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            found.append({
                "name": name,
                "kind": type(m).__name__,
                "in": int(m.in_channels),
                "out": int(m.out_channels),
                "kernel": list(m.kernel_size),
                "stride": list(m.stride),
                "padding": list(m.padding) if not isinstance(m.padding, str) else m.padding,
                "groups": int(m.groups),
                "bias": m.bias is not None,
            })
    return found


@probe("requires_grad")
def requires_grad(value: Any) -> Any:
    """Whether each tensor in ``value`` (a tensor, or a tuple/list of them) is part of an
    autograd graph (``requires_grad``); non-tensors give None."""
    if isinstance(value, tuple | list):
        return [requires_grad(v) for v in value]
    return bool(value.requires_grad) if isinstance(value, torch.Tensor) else None


class _Recorder(nn.Module):
    """Wraps a model and records the first pixel of every image of every batch it sees."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.seen: list[list[float]] = []

    def forward(self, x: torch.Tensor) -> Any:
        self.seen.append([float(v) for v in x.detach().reshape(x.shape[0], -1)[:, 0]])
        return self.model(x)


@probe("recording")
def recording(model: nn.Module) -> nn.Module:
    """``model`` wrapped so that every call records the batch it gets (see ``recorded``)."""
    return _Recorder(model)


@probe("recorded")
def recorded(wrapper: nn.Module) -> list[list[float]]:
    """The first pixel of each image of each batch that a ``recording`` wrapper saw."""
    if not isinstance(wrapper, _Recorder):
        raise TypeError("recorded: not a wrapper made by the 'recording' probe")
    return wrapper.seen


@probe("soft_argmax_yardstick")
def soft_argmax_yardstick(heatmaps: torch.Tensor) -> torch.Tensor:
    """Vectorized soft-argmax: softmax over the flattened maps, then two contractions."""
    n, k, h, w = heatmaps.shape
    p = _softmax(heatmaps.reshape(n, k, h * w), dim=-1).reshape(n, k, h, w)
    rows = _arange(h, dtype=heatmaps.dtype)
    cols = _arange(w, dtype=heatmaps.dtype)
    return torch.stack([_einsum("nkhw,h->nk", p, rows), _einsum("nkhw,w->nk", p, cols)], -1)


@probe("soft_dice_yardstick")
def soft_dice_yardstick(probs: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> Any:
    """Vectorized soft Dice per image and class: three reductions over the pixels."""
    inter = (probs * target).sum(dim=(2, 3))
    return (2.0 * inter + eps) / (probs.sum(dim=(2, 3)) + target.sum(dim=(2, 3)) + eps)
