"""Probes: public helpers that the worker runs next to student objects.

Tests call them with ``student.probe("name", ...)``; they run in the sandboxed worker and
return plain data. Nothing secret may live here: students can read this file.

Two kinds: the generic probes below (every assignment), and an assignment's own probes,
a module the course ships beside its solution and declares in ``assignment.toml``
(``[assignment] probes = "probes.py"``). The zygote imports that module with
:func:`load_course_probes` before it forks any worker, so functions it binds at import time
(performance yardsticks: ``_einsum = np.einsum``) are bound before any student code runs
and a submission that monkeypatches numpy later cannot slow them down.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autograder.errors import CourseError

PROBES: dict[str, Callable[..., Any]] = {}
# Probes that call a function of the student's for the grader, and the position of that
# function among their arguments: students read its name (not the probe's) in messages.
STUDENT_CALLABLE: dict[str, int] = {}
# The name the course's probe module gets in sys.modules: below ``autograder.``, so the
# zygote's harness hiding removes it and submissions cannot import it by name.
COURSE_MODULE = "autograder.course_probes"

# Where @probe registers: the generic tables, or a course module's while it loads.
_target: tuple[dict[str, Callable[..., Any]], dict[str, int]] = (PROBES, STUDENT_CALLABLE)


def probe(name: str, *, calls: int | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a probe; ``calls`` is the position of the student function it calls, if any.

    Used by the generic probes here and by a course's probe module alike."""
    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        functions, callers = _target
        if name in functions:
            raise CourseError(f"probe {name!r} is registered twice; give each probe its own name")
        functions[name] = fn
        if calls is not None:
            callers[name] = calls
        return fn

    return register


@dataclass(frozen=True)
class ProbeSet:
    """The probes a worker can run: name -> function, and the student-function positions."""

    functions: dict[str, Callable[..., Any]]
    calls: dict[str, int] = field(default_factory=dict)

    def table(self) -> dict[str, int | None]:
        """What the grader needs to know of them (plain data): name -> ``calls``."""
        return {name: self.calls.get(name) for name in sorted(self.functions)}


def generic() -> ProbeSet:
    return ProbeSet(dict(PROBES), dict(STUDENT_CALLABLE))


def load_course_probes(path: Path) -> ProbeSet:
    """The generic probes plus those of the course's probe module at ``path``.

    The module registers its probes with ``@autograder.probes.probe("name")`` or lists them
    in a module-level ``PROBES = {"name": function}`` dict. It is trusted course code (it
    runs as the grader's user, before any student code), and public: students get a copy.
    """
    global _target
    functions: dict[str, Callable[..., Any]] = {}
    callers: dict[str, int] = {}
    spec = importlib.util.spec_from_file_location(COURSE_MODULE, path)
    if spec is None or spec.loader is None or not path.is_file():
        raise CourseError(f"the course probe module {path} does not exist; add it or fix "
                          "[assignment] probes in assignment.toml")
    module = importlib.util.module_from_spec(spec)
    sys.modules[COURSE_MODULE] = module  # dataclasses and pickling look their module up
    _target = (functions, callers)
    try:
        spec.loader.exec_module(module)
    except CourseError:
        raise
    except Exception as exc:
        raise CourseError(f"the course probe module {path} failed to import: "
                          f"{type(exc).__name__}: {exc}") from exc
    finally:
        _target = (PROBES, STUDENT_CALLABLE)
    listed = getattr(module, "PROBES", None)
    if listed is not None and listed is not PROBES:
        if not isinstance(listed, dict) or not all(
                isinstance(k, str) and callable(v) for k, v in listed.items()):
            raise CourseError(f"{path}: PROBES must be a dict of probe name -> function")
        for name, fn in listed.items():
            if name in functions and functions[name] is not fn:
                raise CourseError(f"{path}: probe {name!r} is registered twice")
            functions[name] = fn
    clash = sorted(set(functions) & set(PROBES))
    if clash:
        raise CourseError(f"{path}: probe {clash[0]!r} has the name of a generic probe of the "
                          "harness; rename it")
    return ProbeSet({**PROBES, **functions}, {**STUDENT_CALLABLE, **callers})


@probe("type_name")
def type_name(obj: Any) -> str:
    return type(obj).__qualname__


@probe("len")
def length(obj: Any) -> int:
    """``len(obj)`` of an object in the worker (a Dataset, a DataLoader, a list): handles
    refuse ``len(handle)`` in the grader, where a wrong type is the student's to hear about."""
    return int(len(obj))


@probe("count_parameters")
def count_parameters(obj: Any) -> int:
    """Number of trainable scalars: torch modules, or a dict of numpy arrays."""
    if hasattr(obj, "parameters") and callable(obj.parameters):
        return int(sum(p.numel() for p in obj.parameters() if getattr(p, "requires_grad", True)))
    if isinstance(obj, dict):
        return int(sum(np.asarray(v).size for v in obj.values()))
    raise TypeError(f"count_parameters: cannot count parameters of {type(obj).__qualname__}")


@probe("setitem_call", calls=3)
def setitem_call(container: Any, key: Any, value: Any, fn: Callable[..., Any], *args: Any) -> Any:
    """``container[key] = value; return fn(*args)``: one step of a parameter perturbation
    (used with ``student.map`` for finite differences of a whole model)."""
    container[key] = value
    return fn(*args)


@probe("state_dict")
def state_dict(module: Any) -> dict[str, Any]:
    """A torch module's ``state_dict()`` as a plain dict of name -> tensor (arriving in the
    grader as arrays)."""
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(module, torch.nn.Module):
        raise TypeError(f"state_dict: a {type(module).__qualname__} is not a torch.nn.Module")
    # torch's own method, not the module's: an override could report weights it does not use
    return {str(k): v.detach() if hasattr(v, "detach") else v
            for k, v in torch.nn.Module.state_dict(module).items()}


@probe("grads")
def grads(module: Any) -> dict[str, Any]:
    """The gradient of each named parameter of a torch module (None where it has none)."""
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(module, torch.nn.Module):
        raise TypeError(f"grads: a {type(module).__qualname__} is not a torch.nn.Module")
    return {str(k): None if p.grad is None else p.grad.detach()
            for k, p in torch.nn.Module.named_parameters(module)}


@probe("cuda_available")
def cuda_available() -> bool:
    """Whether CUDA works in this worker (torch imported and a device answering)."""
    try:
        import torch
    except ImportError:
        return False
    try:
        return bool(torch.cuda.is_available()) and torch.zeros(1, device="cuda").item() == 0
    except Exception:  # a driver that is there but broken
        return False


@probe("deterministic_torch")
def deterministic_torch(seed: int = 0) -> dict[str, Any]:
    """Same numbers on CPU and CUDA as far as torch allows: TF32 off (it rounds float32
    matmuls and convolutions to 10 bits on Ampere and later), deterministic algorithms,
    no cuDNN autotuning, a fixed seed. Run before a parity check; returns what was set."""
    import os

    import torch

    # cuBLAS needs this before its first call to be deterministic.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.manual_seed(seed)
    return {"tf32": False, "deterministic": True, "seed": seed}
