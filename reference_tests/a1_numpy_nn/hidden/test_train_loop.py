"""Hidden: the training loop watched through a recording model.

``train()`` runs in the worker on A1's ``RecordingModel`` (solutions/a1_numpy_nn/probes.py,
public): row ``i`` of the data carries its id, every ``model.loss(X_batch, y_batch)`` call
is logged with the rows, labels and parameters it saw, and returns a known loss and known
gradients; ``predict`` answers from a table indexed by the number of steps taken. The
grader then checks each promise of ``train``'s docstring against what was logged, and
replays the documented loop (the documented update rules, one config per parameter, kept
across epochs) on the logged batches. A loop that does not call the model (scikit-learn,
say) logs nothing and fails every test here.
"""

from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import pytest

pytestmark = [pytest.mark.visibility("after_published")]

N, N_VAL, CLASSES, BATCH, EPOCHS = 23, 9, 4, 5, 3  # 23 rows: the last batch has 3
STEPS_PER_EPOCH = -(-N // BATCH)  # for messages
TABLE = 64  # rows of the predict table (more than the steps of any run here)


def _sgd(w, dw, state, lr):
    return w - lr * dw


def _momentum(w, dw, state, lr, momentum=0.9):
    state["velocity"] = momentum * state.get("velocity", 0.0) - lr * dw
    return w + state["velocity"]


def _adam(w, dw, state, lr, beta1=0.9, beta2=0.999, epsilon=1e-8):
    t = state["t"] = state.get("t", 0) + 1
    state["m"] = beta1 * state.get("m", 0.0) + (1 - beta1) * dw
    state["v"] = beta2 * state.get("v", 0.0) + (1 - beta2) * dw**2
    m_hat, v_hat = state["m"] / (1 - beta1**t), state["v"] / (1 - beta2**t)
    return w - lr * m_hat / (np.sqrt(v_hat) + epsilon)


RULES = {"sgd": _sgd, "momentum": _momentum, "adam": _adam}


@dataclass
class Run:
    """One recorded ``train()`` call and the inputs the grader chose for it."""

    kwargs: dict[str, Any]
    params: dict[str, np.ndarray]
    directions: dict[str, np.ndarray]
    row_loss: np.ndarray
    correct: np.ndarray
    history: Any
    steps: list[dict[str, Any]]
    final: dict[str, np.ndarray]
    same_dict: bool
    y_all: np.ndarray

    def rows(self) -> list[int]:
        return [r for step in self.steps for r in step["rows"]]

    def step_loss(self, step: dict[str, Any]) -> float:
        return float(np.mean(self.row_loss[np.asarray(step["rows"], dtype=np.int64)]))

    def epoch_ends(self) -> list[int]:
        """Steps taken at the end of each epoch: where the rows fed add up to N per epoch
        (so the history tests do not depend on how an epoch is cut into batches)."""
        fed = np.cumsum([len(step["rows"]) for step in self.steps])
        ends = [int(np.searchsorted(fed, (e + 1) * N)) + 1 for e in range(EPOCHS)]
        assert all(k <= len(fed) and fed[k - 1] == (e + 1) * N for e, k in enumerate(ends)), (
            f"the batches of each epoch must add up to the {N} training rows (got batch sizes "
            f"{[len(step['rows']) for step in self.steps]}); fix that first"
        )
        return ends


def _record(student, rng, *, optimizer="sgd", lr=0.05, optim_config=None, seed=3) -> Run:
    train = student.module("train")
    X = np.column_stack([np.arange(N, dtype=np.float64), rng.standard_normal(N)])
    X_val = np.column_stack([np.arange(N, N + N_VAL, dtype=np.float64), rng.standard_normal(N_VAL)])
    y, y_val = rng.integers(0, CLASSES, N), rng.integers(0, CLASSES, N_VAL)
    # W1 and W2 (b1 and b2) have the same shape: one config shared between parameters
    # runs without an error but mixes their states.
    shapes = {"W1": (3, CLASSES), "b1": (CLASSES,), "W2": (3, CLASSES), "b2": (CLASSES,)}
    params = {name: rng.standard_normal(shape) for name, shape in shapes.items()}
    directions = {name: rng.standard_normal(shape) for name, shape in shapes.items()}
    row_loss = rng.uniform(0.5, 2.0, N + N_VAL)
    correct = rng.random((TABLE, N + N_VAL)) < 0.5
    kwargs = {"optimizer": optimizer, "lr": lr, "epochs": EPOCHS, "batch_size": BATCH,
              "seed": seed}
    if optim_config is not None:
        kwargs["optim_config"] = optim_config
    rec = student.probe("record_training", train.train, X, y, X_val, y_val, params,
                        directions, row_loss, correct, CLASSES, kwargs)
    assert rec["steps"], (
        "train never called model.loss(X_batch, y_batch): train the model it is given "
        "through its loss() and params"
    )
    return Run(kwargs, params, directions, row_loss, correct, rec["history"], rec["steps"],
               rec["final"], rec["same_dict"], np.concatenate([y, y_val]))


def _replay(run: Run, hyper: dict[str, float], promise: str) -> None:
    """The documented loop on the logged batches: each parameter has its own state, kept
    across epochs; the parameters the model saw at every step, and at the end, must be it."""
    rule = RULES[run.kwargs["optimizer"]]
    expected = {name: value.copy() for name, value in run.params.items()}
    state: dict[str, dict[str, Any]] = {name: {} for name in expected}
    for k, step in enumerate([*run.steps, None]):
        seen = run.final if step is None else step["params"]
        # the parameters a step saw are those after the k updates before it
        where = ("after the last step" if step is None else "before the first step" if k == 0
                 else f"after step {k} (epoch {(k - 1) // STEPS_PER_EPOCH + 1}, batch "
                      f"{(k - 1) % STEPS_PER_EPOCH + 1})")
        assert sorted(seen) == sorted(expected), f"model.params has keys {sorted(seen)} {where}"
        for name, value in expected.items():
            got = np.asarray(seen[name])
            ok = got.shape == value.shape and np.allclose(got, value, rtol=1e-9, atol=1e-12)
            assert ok, (
                f"model.params[{name!r}] {where} differs from the documented "
                f"{run.kwargs['optimizer']!r} update of the gradients model.loss returned "
                f"(lr={run.kwargs['lr']}, optim_config={run.kwargs.get('optim_config')}); "
                f"{promise}"
            )
        if step is not None:
            loss = run.step_loss(step)
            for name in expected:
                expected[name] = rule(expected[name], run.directions[name] * loss, state[name],
                                      run.kwargs["lr"], **hyper)


# ---------------------------------------------------------------- batches


@pytest.mark.points(1)
@pytest.mark.tags("convergence", "train")
def test_train_uses_every_row_once_per_epoch(student, rng):
    """train: every epoch feeds each training row, with its own label, to the model once"""
    run = _record(student, rng)
    rows = run.rows()
    assert len(rows) == EPOCHS * N, (
        f"{EPOCHS} epochs over {N} rows should feed {EPOCHS * N} rows to model.loss; your "
        f"train fed {len(rows)} (keep the last, smaller batch)"
    )
    for e in range(EPOCHS):
        epoch = rows[e * N : (e + 1) * N]
        missing = sorted(set(range(N)) - set(epoch))
        assert not missing, (
            f"epoch {e + 1} never used rows {missing[:5]} and used others twice: walk "
            "through one permutation of all rows per epoch"
        )
    for step in run.steps:
        assert step["labels"] == run.y_all[step["rows"]].tolist(), (
            "a batch's labels are not y of the batch's rows: index X and y with the same "
            "indices"
        )


@pytest.mark.points(1)
@pytest.mark.tags("convergence", "train")
def test_train_batches_keep_last_partial(student, rng):
    """train: batches of batch_size in order, the last (smaller) batch of an epoch kept"""
    run = _record(student, rng)
    sizes = [len(step["rows"]) for step in run.steps]
    expected = ([BATCH] * (N // BATCH) + [N % BATCH]) * EPOCHS
    assert sizes == expected, (
        f"batch sizes {sizes} for {EPOCHS} epochs of {N} rows with batch_size={BATCH}, "
        f"expected {expected}: batches of batch_size, and the rows left over form a "
        "smaller last batch"
    )


@pytest.mark.points(1)
@pytest.mark.tags("convergence", "train")
def test_train_reshuffles_every_epoch(student, rng):
    """train: each epoch walks through the rows in a new order (a fresh permutation)"""
    run = _record(student, rng)
    rows = run.rows()
    assert len(rows) == EPOCHS * N, f"train fed {len(rows)} rows in {EPOCHS} epochs of {N}"
    orders = [tuple(rows[e * N : (e + 1) * N]) for e in range(EPOCHS)]
    repeated = [e + 2 for e in range(EPOCHS - 1) if orders[e + 1] in orders[: e + 1]]
    assert not repeated, (
        f"epoch {repeated[0]} saw the rows in the same order as an earlier epoch: draw a "
        "fresh permutation from the generator every epoch"
    )


# ---------------------------------------------------------------- updates


@pytest.mark.points(1)
@pytest.mark.tags("convergence", "train")
def test_train_steps_follow_documented_update(student, rng):
    """train: each step applies the update rule with lr to every parameter's gradient"""
    run = _record(student, rng, optimizer="sgd", lr=0.07)
    _replay(run, {}, "every step updates every parameter (weights and biases) with the "
                     "gradient of that step's batch")


@pytest.mark.points(1)
@pytest.mark.tags("convergence", "train")
def test_train_keeps_optimizer_state_across_epochs(student, rng):
    """train: momentum's velocity carries over from one epoch to the next"""
    run = _record(student, rng, optimizer="momentum", lr=0.05)
    _replay(run, {}, "create each parameter's optimizer config once, before the first "
                     "epoch, and pass the returned config to the next step")


@pytest.mark.points(1)
@pytest.mark.tags("convergence", "train")
def test_train_optimizer_state_per_parameter(student, rng):
    """train: every parameter has its own optimizer config (Adam moments and step count)"""
    run = _record(student, rng, optimizer="adam", lr=0.01)
    _replay(run, {}, "each parameter needs its own config dict (its own m, v and t)")


@pytest.mark.points(1)
@pytest.mark.tags("convergence", "train")
def test_train_passes_optim_config(student, rng):
    """train: optim_config's hyper-parameters reach the update rule (momentum, Adam betas)"""
    config = {"momentum": 0.5}
    run = _record(student, rng, optimizer="momentum", lr=0.05, optim_config=config)
    _replay(run, config, "optim_config's keys go into every parameter's config")
    config = {"beta1": 0.7, "beta2": 0.9, "epsilon": 1e-3}
    run = _record(student, rng, optimizer="adam", lr=0.01, optim_config=config)
    _replay(run, config, "optim_config's keys go into every parameter's config")


@pytest.mark.points(1)
@pytest.mark.tags("convergence", "train")
def test_train_updates_params_in_place(student, rng):
    """train: updates land in model.params itself (the same dict, updated in place)"""
    run = _record(student, rng)
    assert run.same_dict, (
        "after train, model.params is another dict than the model's own: update the "
        "entries of model.params (model.params[name] = ...), do not replace the dict"
    )


# ---------------------------------------------------------------- history


@pytest.mark.points(1)
@pytest.mark.tags("convergence", "train")
def test_train_history_loss_is_mean_batch_loss(student, rng):
    """train: history['loss'] holds, per epoch, the mean of the epoch's mini-batch losses"""
    run = _record(student, rng)
    bounds = [0, *run.epoch_ends()]
    expected = [float(np.mean([run.step_loss(s) for s in run.steps[a:b]]))
                for a, b in pairwise(bounds)]
    got = list(np.asarray(run.history["loss"], dtype=np.float64))
    assert got == pytest.approx(expected, rel=1e-9), (
        f"history['loss'] is {got}, expected {expected}: per epoch, the mean of the losses "
        "model.loss returned for the epoch's mini-batches (each batch counts once)"
    )


@pytest.mark.points(1)
@pytest.mark.tags("convergence", "train")
def test_train_history_accuracy_after_each_epoch(student, rng):
    """train: history's train_acc and val_acc are the accuracies after each epoch's steps"""
    run = _record(student, rng)
    ends = run.epoch_ends()
    for key, rows in (("train_acc", np.arange(N)), ("val_acc", np.arange(N, N + N_VAL))):
        # The recording model answers right exactly where correct[steps taken, row] is set.
        expected = [float(np.mean(run.correct[k % TABLE, rows])) for k in ends]
        got = list(np.asarray(run.history[key], dtype=np.float64))
        data = "(X, y)" if key == "train_acc" else "(X_val, y_val)"
        assert got == pytest.approx(expected, rel=1e-9), (
            f"history[{key!r}] is {got}, expected {expected}: per epoch, the accuracy of "
            f"model.predict on {data} after that epoch's updates"
        )
