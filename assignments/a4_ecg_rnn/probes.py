"""Assignment 4's own probes: helpers the grader runs next to your objects, and the
yardstick of the performance test.

They run in the worker and return plain data; you can read them and call them yourself.
The yardstick is timed in a worker that never loads your code, and the grader compares
your model's time with its time (a ratio, so the machine's speed cancels out). torch
functions are bound here at import, before any submission code runs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from autograder.probes import probe

_as_tensor = torch.as_tensor
_no_grad = torch.no_grad
_manual_seed = torch.manual_seed
_LSTM = nn.LSTM
_Linear = nn.Linear
_named_parameters = nn.Module.named_parameters
_named_buffers = nn.Module.named_buffers
_train = nn.Module.train


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


@probe("set_mode")
def set_mode(module: nn.Module, training: bool) -> bool:
    """``module.train(training)`` (torch's own method); returns the flag."""
    _train(module, bool(training))
    return bool(training)


@probe("seeded_call")
def seeded_call(seed: int, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``torch.manual_seed(seed)`` then ``fn(*args, **kwargs)``: the same dropout masks
    for the same seed."""
    _manual_seed(int(seed))
    return fn(*args, **kwargs)


@probe("requires_grad")
def requires_grad(value: Any) -> Any:
    """Whether each tensor in ``value`` (a tensor, or a tuple/list of them) is part of an
    autograd graph (``requires_grad``); non-tensors give None."""
    if isinstance(value, tuple | list):
        return [requires_grad(v) for v in value]
    return bool(value.requires_grad) if isinstance(value, torch.Tensor) else None


class _Recorder(nn.Module):
    """Wraps a model and records, for every call, the first input value of each record of
    the batch and the mask it got."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.seen: list[list[float]] = []
        self.masks: list[Any] = []
        self.modes: list[bool] = []

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> Any:
        self.seen.append([float(v) for v in x.detach().reshape(x.shape[0], -1)[:, 0]])
        self.masks.append(None if mask is None else mask.detach().cpu().tolist())
        self.modes.append(bool(self.model.training))
        return self.model(x, mask)


@probe("recording")
def recording(model: nn.Module) -> nn.Module:
    """``model`` wrapped so that every call records the batch it gets (see ``recorded``)."""
    return _Recorder(model)


@probe("recorded")
def recorded(wrapper: nn.Module) -> dict[str, Any]:
    """What a ``recording`` wrapper saw: ``first`` (first input value of each record of
    each batch), ``masks`` (each call's mask as nested lists, or None) and ``training``
    (the wrapped model's mode at each call)."""
    if not isinstance(wrapper, _Recorder):
        raise TypeError("recorded: not a wrapper made by the 'recording' probe")
    return {"first": wrapper.seen, "masks": wrapper.masks, "training": wrapper.modes}


_YARDSTICKS: dict[tuple[int, int], nn.Module] = {}


@probe("lstm_yardstick")
def lstm_yardstick(x: torch.Tensor, hidden_size: int = 64) -> torch.Tensor:
    """torch's ``nn.LSTM`` (one bidirectional layer of ``hidden_size`` units) and a linear head
    on ``x`` (N, T, C): the per-time-point logits (N, T) of a recurrent tagger, computed by
    the library's fused loop over time. The weights are fixed (seeded) per input size."""
    key = (int(x.shape[-1]), int(hidden_size))
    if key not in _YARDSTICKS:
        gen_state = torch.random.get_rng_state()
        _manual_seed(1234)
        lstm = _LSTM(key[0], key[1], batch_first=True, bidirectional=True)
        head = _Linear(2 * key[1], 1)
        torch.random.set_rng_state(gen_state)
        _YARDSTICKS[key] = nn.ModuleDict({"lstm": lstm, "head": head})
    mods = _YARDSTICKS[key]
    out, _ = mods["lstm"](x)
    return mods["head"](out).squeeze(-1)


@probe("first_output")
def first_output(x: torch.Tensor, fn: Any, *args: Any) -> Any:
    """``fn(x, *args)``, or its first element when it returns a tuple (an LSTM cell's h')."""
    out = fn(x, *args)
    return out[0] if isinstance(out, tuple | list) else out


@probe("manual_seed")
def manual_seed(seed: int) -> int:
    """``torch.manual_seed(seed)``: the same initial weights and dropout masks every time."""
    _manual_seed(int(seed))
    return int(seed)


class _OpCounter(TorchDispatchMode):
    """Counts the aten operations dispatched while it is active."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.count += 1
        return func(*args, **(kwargs or {}))


@probe("op_count")
def op_count(fn: Any, *args: Any, **kwargs: Any) -> int:
    """How many tensor operations (aten ops) ``fn(*args, **kwargs)`` runs, under
    ``torch.no_grad()``: a deterministic measure of how the work grows with the input
    (a Python loop over time points runs more operations for a longer record)."""
    with _no_grad(), _OpCounter() as counter:
        fn(*args, **kwargs)
    return int(counter.count)
