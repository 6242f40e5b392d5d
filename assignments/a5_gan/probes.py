"""Assignment 5's own probes: helpers the grader runs next to your objects, and the
yardstick of the performance test.

They run in the worker and return plain data; you can read them and call them yourself.
The critics and models built here are simple on purpose: their gradients have closed
forms the grader knows (a linear critic ``w . x + b`` has gradient ``w`` everywhere, so
its gradient penalty is ``lam * (||w|| - 1)**2`` whatever the interpolates). torch
functions are bound here at import, before any submission code runs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from autograder.probes import probe

_as_tensor = torch.as_tensor
_no_grad = torch.no_grad
_tanh = torch.tanh
_randn = torch.randn
_rand = torch.rand
_grad = torch.autograd.grad
_softplus = torch.nn.functional.softplus
_Generator = torch.Generator


@probe("input_grad", calls=0)
def input_grad(fn: Any, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
    """Autograd's gradient of ``fn(x, *args, **kwargs).sum()`` with respect to ``x``;
    ``None`` when ``x`` got no gradient."""
    x = x.detach().clone().requires_grad_(True)
    fn(x, *args, **kwargs).sum().backward()
    return None if x.grad is None else x.grad.detach()


class LinearCritic(nn.Module):
    """``score(x) = sum(w * x) + b`` per sample; with ``num_classes`` rows of ``w``,
    ``score(x, labels) = sum(w[labels_i] * x_i) + b[labels_i]``. Records the labels it got."""

    def __init__(self, w: Any, b: Any, conditional: bool = False) -> None:
        super().__init__()
        self.w = nn.Parameter(_as_tensor(w))
        self.b = nn.Parameter(_as_tensor(b))
        self.conditional = conditional
        self.labels_seen: list[list[int]] = []

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1)
        if self.conditional:
            if labels is None:
                raise TypeError("this conditional critic needs labels: critic(x, labels)")
            self.labels_seen.append([int(v) for v in labels])
            return (flat * self.w[labels].to(flat.dtype)).sum(dim=1) + self.b[labels].to(flat.dtype)
        if labels is not None:
            self.labels_seen.append([int(v) for v in labels])
        return flat @ self.w.reshape(-1).to(flat.dtype) + self.b.to(flat.dtype)


@probe("linear_critic")
def linear_critic(w: Any, b: Any, conditional: bool = False) -> nn.Module:
    """A linear critic (float64 parameters ``w`` of the shape of one sample, scalar ``b``;
    conditional: ``w`` (C, ...) and ``b`` (C,), one row per class)."""
    return LinearCritic(w, b, conditional)


class TanhCritic(nn.Module):
    """``score(x) = tanh(x_flat @ W1.T + b1) @ w2``: a smooth critic whose input gradient
    varies from point to point. Records every input it gets (see ``critic_inputs``)."""

    def __init__(self, w1: Any, b1: Any, w2: Any) -> None:
        super().__init__()
        self.w1 = nn.Parameter(_as_tensor(w1))
        self.b1 = nn.Parameter(_as_tensor(b1))
        self.w2 = nn.Parameter(_as_tensor(w2))
        self.inputs: list[Any] = []

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        self.inputs.append(x.detach().clone())
        flat = x.reshape(x.shape[0], -1)
        return _tanh(flat @ self.w1.T + self.b1) @ self.w2


@probe("tanh_critic")
def tanh_critic(w1: Any, b1: Any, w2: Any) -> nn.Module:
    """A one-hidden-layer tanh critic with the given weights."""
    return TanhCritic(w1, b1, w2)


@probe("critic_inputs")
def critic_inputs(critic: nn.Module) -> list[Any]:
    """The inputs a ``tanh_critic`` received, call by call."""
    if not isinstance(critic, TanhCritic):
        raise TypeError("critic_inputs: not a critic made by the 'tanh_critic' probe")
    return list(critic.inputs)


@probe("critic_labels")
def critic_labels(critic: nn.Module) -> list[list[int]]:
    """The labels a ``linear_critic`` received, call by call."""
    if not isinstance(critic, LinearCritic):
        raise TypeError("critic_labels: not a critic made by the 'linear_critic' probe")
    return list(critic.labels_seen)


@probe("penalty_of_weights", calls=0)
def penalty_of_weights(gp: Any, w1: Any, b1: Any, w2: Any, real: Any, fake: Any, eps: Any,
                       lam: float) -> float:
    """``gp(tanh_critic(w1, b1, w2), real, fake, lam=lam, eps=eps)`` as a float."""
    critic = TanhCritic(w1, b1, w2)
    return float(gp(critic, real, fake, lam=lam, eps=eps))


@probe("penalty_weight_grad", calls=0)
def penalty_weight_grad(gp: Any, w1: Any, b1: Any, w2: Any, real: Any, fake: Any, eps: Any,
                        lam: float) -> Any:
    """Autograd's gradient of ``gp(...)`` (as in ``penalty_of_weights``) with respect to
    the critic's first-layer weights ``w1``; None when the penalty is not connected to them
    (the gradient inside was built without ``create_graph=True``)."""
    critic = TanhCritic(w1, b1, w2)
    value = gp(critic, real, fake, lam=lam, eps=eps)
    if not isinstance(value, torch.Tensor) or not value.requires_grad:
        return None
    value.backward()
    return None if critic.w1.grad is None else critic.w1.grad.detach()


class Affine(nn.Module):
    """``x @ W.T + b`` (``squeeze``: one output per sample, shape (N,)). As a generator it
    has ``latent_dim`` = W's columns. Records the labels it got."""

    def __init__(self, w: Any, b: Any, squeeze: bool) -> None:
        super().__init__()
        self.w = nn.Parameter(_as_tensor(w))
        self.b = nn.Parameter(_as_tensor(b))
        self.squeeze = squeeze
        self.latent_dim = int(self.w.shape[1])
        self.num_classes = 0
        self.labels_seen: list[list[int]] = []
        self.batches: list[int] = []
        self.modes: list[bool] = []

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is not None:
            self.labels_seen.append([int(v) for v in labels])
        self.batches.append(int(x.shape[0]))
        self.modes.append(bool(self.training))
        out = x.to(self.w.dtype) @ self.w.T + self.b
        return out[:, 0] if self.squeeze else out


@probe("affine")
def affine(w: Any, b: Any, squeeze: bool = False) -> nn.Module:
    """An affine model with the given float64 weights (see ``Affine``)."""
    return Affine(w, b, squeeze)


@probe("affine_record")
def affine_record(model: nn.Module) -> dict[str, Any]:
    """The labels, batch sizes and training modes an ``affine`` model saw, call by call."""
    if not isinstance(model, Affine):
        raise TypeError("affine_record: not a model made by the 'affine' probe")
    return {"labels": list(model.labels_seen), "batches": list(model.batches),
            "training": list(model.modes)}


@probe("sgd")
def sgd(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """``torch.optim.SGD(model.parameters(), lr=lr)``."""
    return torch.optim.SGD(model.parameters(), lr=lr)


@probe("latent")
def latent(n: int, dim: int, seed: int) -> Any:
    """``torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))``."""
    return _randn(n, dim, generator=_Generator().manual_seed(seed))


@probe("scale_parameters")
def scale_parameters(model: nn.Module, factor: float) -> int:
    """Multiply every floating-point parameter of ``model`` by ``factor`` (in place);
    returns how many tensors changed."""
    count = 0
    with _no_grad():
        for p in model.parameters():
            if p.is_floating_point():
                p.mul_(factor)
                count += 1
    return count


@probe("is_training")
def is_training(model: nn.Module) -> bool:
    return bool(model.training)


# ---------------------------------------------------------------- performance yardstick


def _mlp(inp: int, out: int) -> nn.Module:
    return nn.Sequential(nn.Linear(inp, 64), nn.LeakyReLU(0.2), nn.Linear(64, 64),
                         nn.LeakyReLU(0.2), nn.Linear(64, out))


class _YardG(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.latent_dim = 2
        self.num_classes = 0
        self.net = _mlp(2, 2)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z)


class _YardD(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.num_classes = 0
        self.net = _mlp(2, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x)[:, 0]


def _fixed_models() -> tuple[nn.Module, nn.Module, Any, Any]:
    torch.manual_seed(0)
    g, d = _YardG(), _YardD()
    return (g, d, torch.optim.Adam(g.parameters(), 1e-4, betas=(0.5, 0.999)),
            torch.optim.Adam(d.parameters(), 1e-4, betas=(0.5, 0.999)))


@probe("fixed_models")
def fixed_models() -> tuple[nn.Module, nn.Module, Any, Any]:
    """(G, D, opt_g, opt_d): the MLP pair of the yardstick (points in the plane), seeded;
    the performance test times your ``train_step`` on these models, so only the step
    itself is compared."""
    return _fixed_models()


_YARD: dict[str, Any] = {}


@probe("wgan_step_yardstick")
def wgan_step_yardstick(real: torch.Tensor, z: torch.Tensor, lam: float = 10.0) -> list[float]:
    """One vectorized WGAN-GP step (critic, then generator) on the models of
    ``fixed_models``: one ``autograd.grad`` for the whole batch."""
    if "models" not in _YARD:
        _YARD["models"] = _fixed_models()
    g, d, opt_g, opt_d = _YARD["models"]
    fake = g(z)
    eps = _rand(real.shape[0], 1)
    s = (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = _grad(d(s).sum(), s, create_graph=True)
    gp = lam * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
    loss_d = d(fake.detach()).mean() - d(real).mean() + gp
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    loss_g = -d(fake).mean()
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    return [float(loss_d.detach()), float(loss_g.detach())]


@probe("requires_grad")
def requires_grad(value: Any) -> Any:
    """Whether a tensor is part of an autograd graph (``requires_grad``); None otherwise."""
    return bool(value.requires_grad) if isinstance(value, torch.Tensor) else None


@probe("shipped_segmenter")
def shipped_segmenter() -> nn.Module:
    """``segmenter.load_segmenter()`` of the shipped support file (in evaluation mode)."""
    import importlib

    return importlib.import_module("segmenter").load_segmenter()
