"""Assignment 2's own probes: helpers the grader runs next to your objects, and the
yardstick of the performance test.

They run in the worker (the process that runs your code) and return plain data; the
yardstick runs in a sibling worker that never loads your code. You can read them and call
them yourself to see what the graders look at. Nothing here is secret.

torch functions are bound here at import, before any submission code runs.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from autograder.probes import probe

_Module = nn.Module
_cross_entropy = F.cross_entropy
_gradcheck = torch.autograd.gradcheck
MAX_FILE_BYTES = 32 * 1024 * 1024


# ---------------------------------------------------------------- autograd functions


@probe("autograd_grads", calls=0)
def autograd_grads(fn: Any, inputs: list[Any], grad_out: Any) -> dict[str, Any]:
    """``out = fn(*inputs)``, then ``out.backward(grad_out)``: the output and the gradient
    each input received (None for an input without one). Inputs that should receive a
    gradient arrive as leaf tensors with ``requires_grad=True``."""
    out = fn(*inputs)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"expected a tensor, got {type(out).__qualname__}")
    if isinstance(grad_out, torch.Tensor) and out.dim() == 0 and grad_out.numel() == 1:
        grad_out = grad_out.reshape(())  # a 0-d tensor sent by the grader arrives as (1,)
    out.backward(grad_out)
    return {"out": out.detach(),
            "grads": [x.grad.detach() if isinstance(x, torch.Tensor) and x.grad is not None
                      else None for x in inputs]}


@probe("gradcheck", calls=0)
def gradcheck(fn: Any, inputs: list[Any]) -> bool:
    """``torch.autograd.gradcheck(fn, inputs)`` in float64 (a second opinion: the grader
    computes its own finite differences)."""
    return bool(_gradcheck(fn, tuple(inputs), eps=1e-6, atol=1e-5, rtol=1e-3,
                           raise_exception=False))


# ---------------------------------------------------------------- models


@probe("load_state")
def load_state(model: Any, state: dict[str, Any]) -> None:
    """``nn.Module.load_state_dict(model, state)`` (torch's own method, strict)."""
    if not isinstance(model, _Module):
        raise TypeError(f"a {type(model).__qualname__} is not a torch.nn.Module")
    _Module.load_state_dict(model, state, strict=True)


@probe("modes")
def modes(model: Any) -> dict[str, bool]:
    """``module.training`` of the model and of each of its submodules, by name."""
    if not isinstance(model, _Module):
        raise TypeError(f"a {type(model).__qualname__} is not a torch.nn.Module")
    return {name or "<model>": bool(m.training) for name, m in _Module.named_modules(model)}


@probe("devices")
def devices(model: Any) -> list[str]:
    """The devices of the model's parameters and buffers (sorted, without repeats)."""
    if not isinstance(model, _Module):
        raise TypeError(f"a {type(model).__qualname__} is not a torch.nn.Module")
    tensors = [*_Module.parameters(model), *_Module.buffers(model)]
    return sorted({str(t.device) for t in tensors})


# ---------------------------------------------------------------- optimizers and schedules


@probe("optimizer_trace")
def optimizer_trace(model: Any, optimizer: Any, steps: int) -> list[dict[str, Any]]:
    """``steps`` steps of ``optimizer`` on the loss ``0.5 * sum of every parameter squared``
    (its gradient is the parameter itself); the parameters after each step, by name."""
    trace = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = sum(0.5 * (p * p).sum() for p in _Module.parameters(model))
        loss.backward()
        optimizer.step()
        trace.append({name: p.detach().clone()
                      for name, p in _Module.named_parameters(model)})
    return trace


@probe("lr_trace")
def lr_trace(optimizer: Any, scheduler: Any, steps: int) -> list[float]:
    """The learning rate of the first parameter group before each of ``steps`` rounds of
    ``optimizer.step(); scheduler.step()`` (no gradients: the parameters do not move)."""
    rates = []
    for _ in range(steps):
        rates.append(float(optimizer.param_groups[0]["lr"]))
        optimizer.step()
        scheduler.step()
    return rates


# ---------------------------------------------------------------- data


@probe("batches")
def batches(loader: Any) -> list[tuple[Any, Any]]:
    """Every ``(inputs, labels)`` batch of one pass over a DataLoader, in order."""
    return [(xb, yb) for xb, yb in loader]


@probe("length")
def length(obj: Any) -> int:
    """``len(obj)`` (a Dataset or a DataLoader)."""
    return len(obj)


@probe("items")
def items(dataset: Any, indices: list[int]) -> list[Any]:
    """``[dataset[i] for i in indices]``."""
    return [dataset[i] for i in indices]


# ---------------------------------------------------------------- files (checkpoints)


@probe("scratch_dir")
def scratch_dir() -> str:
    """A new empty folder the worker may write to (``tempfile.mkdtemp``: the worker's
    working folder is read-only in the sandbox), for a checkpoint file."""
    return tempfile.mkdtemp(prefix="a2_")


@probe("read_bytes")
def read_bytes(path: str) -> bytes:
    """The bytes of a file the worker wrote (a checkpoint)."""
    p = Path(path)
    if p.stat().st_size > MAX_FILE_BYTES:
        raise ValueError(f"{path} holds more than {MAX_FILE_BYTES} bytes")
    return p.read_bytes()


@probe("write_bytes")
def write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to a file (in a :func:`scratch_dir` folder)."""
    Path(path).write_bytes(data)


# ---------------------------------------------------------------- the yardstick


def _yardstick_model() -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for cin, cout, stride in ((1, 8, 1), (8, 8, 1), (8, 16, 2), (16, 16, 1)):
        layers += [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
                   nn.BatchNorm2d(cout), nn.ReLU()]
    net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    return net, torch.optim.SGD(net.parameters(), lr=0.01)


_YARD_NET, _YARD_OPT = _yardstick_model()


@probe("train_step_yardstick")
def train_step_yardstick(x: torch.Tensor, y: torch.Tensor) -> tuple[float, int]:
    """One SGD step of a conv-BN-ReLU network of the size of ``SmallCNN()`` (channels
    (8, 16)) on the batch ``(x, y)``, written with torch's built-in modules."""
    _YARD_NET.train()
    _YARD_OPT.zero_grad()
    scores = _YARD_NET(x)
    loss = _cross_entropy(scores, y)
    loss.backward()
    _YARD_OPT.step()
    return float(loss.item()), int((scores.argmax(1) == y).sum().item())


@probe("checkpoint_summary")
def checkpoint_summary(path: str) -> dict[str, Any]:
    """What a checkpoint file holds, read with ``torch.load(weights_only=True)`` on the
    CPU: its top-level keys, the model's class name, its config, and the names and
    values of its state dict."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict):
        raise TypeError(f"the checkpoint holds a {type(ckpt).__qualname__}, not a dict")
    state = ckpt.get("state_dict")
    return {"keys": sorted(str(k) for k in ckpt), "model": ckpt.get("model"),
            "config": ckpt.get("config"),
            "state_dict": dict(state) if isinstance(state, dict) else None}


@probe("uniform_draws")
def uniform_draws(seed: int, n: int) -> list[float]:
    """The first ``n`` numbers ``torch.rand((), generator=g)`` of a generator seeded with
    ``seed``: what a transform given that generator draws, one per call."""
    g = torch.Generator().manual_seed(int(seed))
    return [float(torch.rand((), generator=g)) for _ in range(n)]


@probe("torch_generator")
def torch_generator(seed: int) -> torch.Generator:
    """A ``torch.Generator`` seeded with ``seed`` (stays in the worker: a handle)."""
    return torch.Generator().manual_seed(int(seed))
