"""Hidden: optimizers and schedules against closed forms, the training loop's history,
held-out accuracy, determinism and checkpoints.

Held-out accuracy is computed here: the trained model's parameters and buffers are
fetched by value, the grader's reference forward gives the scores of the held-out digits,
whose labels never leave the grader (the classes are also renamed with a secret
derangement). The model's own outputs on those digits must agree with the reference.
Thresholds: bench/thresholds_a2.py measures the reference solution over 10 seeds; see
bench/results/thresholds_a2.txt.
"""

import numpy as np
import pytest

from autograder.errors import StudentError

pytestmark = [pytest.mark.visibility("after_published")]

MLP_THRESHOLD = 0.85   # reference over 10 seeds: see bench/results/thresholds_a2.txt
CNN_THRESHOLD = 0.80


def _state(student, model):
    return {k: np.asarray(v, np.float64) for k, v in student.probe("state_dict", model).items()}


@pytest.mark.points(2)
@pytest.mark.tags("convergence", "optim")
def test_sgd_momentum_closed_form(student, ref):
    """make_optimizer('sgd'): three steps with momentum and weight decay match the update rule"""
    models, train = student.module("models"), student.module("train")
    model = student.call(models.MLP(3, [4], 2).double, want="handle")
    p = _state(student, model)
    lr, mu, wd = 0.1, 0.9, 0.05
    opt = train.make_optimizer(model, "sgd", lr=lr, momentum=mu, weight_decay=wd)
    trace = student.probe("optimizer_trace", model, opt, 3)
    buf = {}
    for step, got in enumerate(trace, start=1):
        for k in p:
            g = p[k] + wd * p[k]  # the probe's loss 0.5 * sum(p^2) has gradient p
            buf[k] = g if step == 1 else mu * buf[k] + g
            p[k] = p[k] - lr * buf[k]
            ref.assert_close(f"parameter {k} after SGD step {step} (lr {lr}, momentum {mu}, "
                             f"weight_decay {wd})", got[k], p[k], rtol=1e-10)


@pytest.mark.points(2)
@pytest.mark.tags("convergence", "optim")
def test_adam_closed_form(student, ref):
    """make_optimizer('adam'): three steps match Adam's update with bias correction and weight decay"""
    models, train = student.module("models"), student.module("train")
    model = student.call(models.MLP(3, [4], 2).double, want="handle")
    p = _state(student, model)
    lr, wd, b1, b2, eps = 0.01, 0.02, 0.9, 0.999, 1e-8
    opt = train.make_optimizer(model, "adam", lr=lr, momentum=0.5, weight_decay=wd)
    trace = student.probe("optimizer_trace", model, opt, 3)
    m = {k: 0.0 for k in p}
    v = {k: 0.0 for k in p}
    for t, got in enumerate(trace, start=1):
        for k in p:
            g = p[k] + wd * p[k]
            m[k] = b1 * m[k] + (1 - b1) * g
            v[k] = b2 * v[k] + (1 - b2) * g * g
            p[k] = p[k] - lr * (m[k] / (1 - b1 ** t)) / (np.sqrt(v[k] / (1 - b2 ** t)) + eps)
            ref.assert_close(f"parameter {k} after Adam step {t} (lr {lr}, weight_decay {wd})",
                             got[k], p[k], rtol=1e-8)


@pytest.mark.points(1)
@pytest.mark.tags("convergence", "optim")
def test_unknown_names_rejected(student):
    """make_optimizer and make_scheduler raise ValueError for unknown names; 'none' gives None"""
    models, train = student.module("models"), student.module("train")
    model = models.MLP(2, [], 2)
    with pytest.raises(StudentError) as info:
        train.make_optimizer(model, "rmsprop", lr=0.1)
    assert info.value.type_name == "ValueError", (
        f"make_optimizer(name='rmsprop') raised {info.value.type_name}, expected ValueError")
    opt = train.make_optimizer(model, "sgd", lr=0.1)
    assert student.probe("type_name", opt) == "SGD"
    assert student.probe("type_name", train.make_optimizer(model, "adam", lr=0.1)) == "Adam"
    with pytest.raises(StudentError) as info:
        train.make_scheduler(opt, "cosine", epochs=2, steps_per_epoch=2)
    assert info.value.type_name == "ValueError", (
        f"make_scheduler(name='cosine') raised {info.value.type_name}, expected ValueError")
    assert train.make_scheduler(opt, "none", epochs=2, steps_per_epoch=2) is None, (
        "make_scheduler(name='none') must return None")


@pytest.mark.points(1)
@pytest.mark.tags("convergence", "schedules")
def test_step_lr_closed_form(student):
    """make_scheduler('step'): lr * gamma ** (epoch // step_size) for other step sizes and factors"""
    models, train = student.module("models"), student.module("train")
    for lr, step_size, gamma in ((0.2, 3, 0.3), (0.05, 1, 0.9)):
        opt = train.make_optimizer(models.MLP(2, [], 2), "sgd", lr=lr)
        sched = train.make_scheduler(opt, "step", epochs=9, steps_per_epoch=4,
                                     step_size=step_size, gamma=gamma, max_lr=1.0)
        rates = student.probe("lr_trace", opt, sched, 9)
        np.testing.assert_allclose(rates, [lr * gamma ** (e // step_size) for e in range(9)],
                                   rtol=1e-12, err_msg=f"StepLR(step_size={step_size}, gamma={gamma})")


@pytest.mark.points(2)
@pytest.mark.tags("convergence", "schedules")
def test_onecycle_closed_form(student, onecycle):
    """make_scheduler('onecycle'): cosine warm-up to max_lr and annealing over epochs * steps_per_epoch steps"""
    models, train = student.module("models"), student.module("train")
    epochs, spe, max_lr = 4, 5, 0.4
    opt = train.make_optimizer(models.MLP(2, [], 2), "sgd", lr=0.01)
    sched = train.make_scheduler(opt, "onecycle", epochs=epochs, steps_per_epoch=spe, max_lr=max_lr)
    rates = student.probe("lr_trace", opt, sched, epochs * spe)
    expected = [onecycle(t, max_lr, epochs * spe) for t in range(epochs * spe)]
    np.testing.assert_allclose(rates, expected, rtol=1e-9,
                               err_msg=f"OneCycleLR(max_lr={max_lr}, total_steps={epochs * spe})")


def _blobs(rng, n, d=4, classes=3):
    centers = 2.0 * rng.standard_normal((classes, d))
    y = rng.integers(0, classes, n)
    return (centers[y] + rng.standard_normal((n, d))).astype(np.float32), y


@pytest.mark.points(2)
@pytest.mark.tags("convergence", "training")
def test_evaluate(student, rng, ref):
    """evaluate: mean loss over all samples (uneven batches), accuracy, eval mode, no gradients"""
    models, data, train = (student.module(m) for m in ("models", "data", "train"))
    X, y = _blobs(rng, 10)
    model = models.MLP(4, [16], 3, dropout=0.5)
    layers = ref.check_structure("MLP(4, [16], 3)", student.probe("state_dict", model),
                                 ref.mlp_shapes(4, [16], 3))
    loader = data.make_loader(data.DigitsDataset(student.tensor(X), student.tensor(y)), 4)
    got = train.evaluate(model, loader, "cpu")
    scores = ref.mlp_forward(layers, X)
    loss, _ = ref.cross_entropy(scores, y)
    acc = float(np.mean(np.argmax(scores, 1) == y))
    assert isinstance(got, (tuple, list)) and len(got) == 2, f"evaluate returned {got!r}"
    assert got[0] == pytest.approx(loss, rel=1e-5), (
        f"evaluate: loss {got[0]!r}, expected {loss:.6g} (mean over all 10 samples in batches of "
        "4, 4 and 2, with dropout off)")
    assert got[1] == pytest.approx(acc), f"evaluate: accuracy {got[1]!r}, expected {acc}"
    modes = student.probe("modes", model)
    assert not any(modes.values()), f"evaluate must leave the model in eval mode: {modes}"
    grads = student.probe("grads", model)
    assert all(g is None or not np.any(g) for g in grads.values()), (
        "evaluate computed gradients; use torch.no_grad()")


@pytest.mark.points(2)
@pytest.mark.tags("convergence", "training")
def test_fit_history_values(student, rng, ref):
    """fit: history values from the loss, the accuracy and the StepLR rates, validation after each epoch"""
    models, data, train = (student.module(m) for m in ("models", "data", "train"))
    X, y = _blobs(rng, 24)
    Xv, yv = _blobs(rng, 9)
    model = models.MLP(4, [8], 3)
    layers = ref.check_structure("MLP(4, [8], 3)", student.probe("state_dict", model),
                                 ref.mlp_shapes(4, [8], 3))
    train_loader = data.make_loader(data.DigitsDataset(student.tensor(X), student.tensor(y)), 24)
    val_loader = data.make_loader(data.DigitsDataset(student.tensor(Xv), student.tensor(yv)), 4)
    opt = train.make_optimizer(model, "sgd", lr=0.5)
    sched = train.make_scheduler(opt, "step", epochs=5, steps_per_epoch=1, step_size=2, gamma=0.5)
    hist = train.fit(model, train_loader, val_loader, opt, epochs=5, scheduler=sched, device="cpu")
    keys = ["lr", "train_acc", "train_loss", "val_acc", "val_loss"]
    assert isinstance(hist, dict) and sorted(hist) == keys, f"fit: history keys {sorted(hist) if isinstance(hist, dict) else hist!r}, expected {keys}"
    for k in keys:
        assert len(hist[k]) == 5 and all(isinstance(v, float) for v in hist[k]), (
            f"fit: history[{k!r}] is {hist[k]!r}, expected 5 floats (one per epoch)")
    np.testing.assert_allclose(hist["lr"], [0.5, 0.5, 0.25, 0.25, 0.125], rtol=1e-12,
                               err_msg="history['lr']: StepLR must be stepped once per epoch")
    scores = ref.mlp_forward(layers, X)  # full batch: epoch 1's loss is the initial model's
    loss0, _ = ref.cross_entropy(scores, y)
    assert hist["train_loss"][0] == pytest.approx(loss0, rel=1e-5), (
        f"history['train_loss'][0] is {hist['train_loss'][0]}, expected {loss0:.6g}")
    assert hist["train_acc"][0] == pytest.approx(np.mean(np.argmax(scores, 1) == y))
    final = ref.check_structure("MLP after fit", student.probe("state_dict", model), ref.mlp_shapes(4, [8], 3))
    vs = ref.mlp_forward(final, Xv)
    vloss, _ = ref.cross_entropy(vs, yv)
    assert hist["val_loss"][-1] == pytest.approx(vloss, rel=1e-5), (
        f"history['val_loss'][-1] is {hist['val_loss'][-1]}, expected {vloss:.6g} (the trained "
        "model on the validation loader)")
    assert hist["val_acc"][-1] == pytest.approx(np.mean(np.argmax(vs, 1) == yv))


@pytest.mark.points(2)
@pytest.mark.tags("convergence", "schedules")
def test_fit_scheduler_intervals(student, rng, onecycle):
    """fit steps OneCycleLR after every batch and StepLR after every epoch (history['lr'])"""
    models, data, train = (student.module(m) for m in ("models", "data", "train"))
    X, y = _blobs(rng, 12)
    loader = data.make_loader(data.DigitsDataset(student.tensor(X), student.tensor(y)), 4)
    model = models.MLP(4, [4], 3)
    opt = train.make_optimizer(model, "adam", lr=0.01)
    sched = train.make_scheduler(opt, "onecycle", epochs=4, steps_per_epoch=3, max_lr=0.05)
    hist = train.fit(model, loader, loader, opt, epochs=4, scheduler=sched)
    np.testing.assert_allclose(hist["lr"], [onecycle(3 * e, 0.05, 12) for e in range(4)],
                               rtol=1e-9, err_msg="history['lr'] with OneCycleLR over 3 batches per epoch")
    opt = train.make_optimizer(model, "sgd", lr=0.1)
    sched = train.make_scheduler(opt, "step", epochs=4, steps_per_epoch=3, step_size=2, gamma=0.5)
    hist = train.fit(model, loader, loader, opt, epochs=4, scheduler=sched)
    np.testing.assert_allclose(hist["lr"], [0.1, 0.1, 0.05, 0.05], rtol=1e-12,
                               err_msg="history['lr'] with StepLR over 3 batches per epoch: "
                               "StepLR is stepped once per epoch, OneCycleLR after every batch")


@pytest.mark.points(3)
@pytest.mark.tags("convergence", "accuracy")
def test_mlp_heldout_accuracy(student, digits, ref, recipe, leaderboard):
    """MLP(64, [64], 10) trained with Adam reaches the accuracy floor on held-out digits"""
    model, hist = recipe(student, digits, "mlp", 0)
    layers = ref.check_structure("MLP(64, [64], 10)", student.probe("state_dict", model),
                                 ref.mlp_shapes(64, [64], 10))
    scores = ref.mlp_forward(layers, digits.X_test)
    ref.assert_close("the trained MLP's scores on held-out digits", model(student.tensor(digits.X_test)),
                     scores, rtol=1e-4, hint="scores must come from the model's parameters")
    acc = float(np.mean(np.argmax(scores, 1) == digits.y_test))
    leaderboard("mlp_accuracy", acc, order="desc")
    assert acc >= MLP_THRESHOLD, (
        f"the MLP reached {acc:.3f} accuracy on held-out digits (history: val_acc "
        f"{[round(v, 3) for v in hist['val_acc']]}); at least {MLP_THRESHOLD} expected")


@pytest.mark.points(3)
@pytest.mark.tags("convergence", "accuracy")
def test_cnn_heldout_accuracy(student, digits, ref, recipe, leaderboard):
    """SmallCNN trained with OneCycleLR and augmentation reaches the accuracy floor on held-out digits"""
    model, hist = recipe(student, digits, "cnn", 0)
    layers = ref.check_structure("SmallCNN()", student.probe("state_dict", model),
                                 ref.cnn_shapes(1, 10, [8, 16], 3))
    scores = ref.cnn_forward(layers, digits.X_test)[0]
    student.call(model.eval, want="none")
    ref.assert_close("the trained SmallCNN's eval-mode scores on held-out digits",
                     model(student.tensor(digits.X_test)), scores, rtol=1e-3,
                     hint="scores must come from the model's parameters and running statistics")
    acc = float(np.mean(np.argmax(scores, 1) == digits.y_test))
    leaderboard("cnn_accuracy", acc, order="desc")
    assert acc >= CNN_THRESHOLD, (
        f"the SmallCNN reached {acc:.3f} accuracy on held-out digits (history: val_acc "
        f"{[round(v, 3) for v in hist['val_acc']]}); at least {CNN_THRESHOLD} expected")


@pytest.mark.points(2)
@pytest.mark.tags("convergence", "determinism")
def test_fit_deterministic(student, rng):
    """fit: the same seed and initial weights give the same history and weights; another seed differs"""
    models, data, train = (student.module(m) for m in ("models", "data", "train"))
    X, y = _blobs(rng, 32)
    init = None
    runs = []
    # the global seed differs between the first two runs: setting it is fit's job
    for seed, global_seed in ((11, 1), (11, 2), (12, 1)):
        model = models.MLP(4, [16], 3, dropout=0.3)
        if init is None:
            init = student.probe("state_dict", model)
        student.probe("load_state", model, {k: student.tensor(v) for k, v in init.items()})
        student.probe("deterministic_torch", global_seed)
        ds = data.DigitsDataset(student.tensor(X), student.tensor(y))
        opt = train.make_optimizer(model, "sgd", lr=0.1, momentum=0.9)
        hist = train.fit(model, data.make_loader(ds, 8, shuffle=True, seed=1),
                         data.make_loader(ds, 32), opt, epochs=2, seed=seed)
        runs.append((hist, student.probe("state_dict", model)))
    (h1, s1), (h2, s2), (h3, s3) = runs
    assert h1 == h2, f"fit with seed 11 twice gave different histories: {h1} vs {h2}"
    for k in s1:
        np.testing.assert_array_equal(s1[k], s2[k], err_msg=f"fit with the same seed: {k} differs")
    assert any(not np.array_equal(s1[k], s3[k]) for k in s1), (
        "fit with seeds 11 and 12 gave the same weights: seed torch with fit's seed "
        "(dropout masks come from it)")


@pytest.mark.points(3)
@pytest.mark.tags("convergence", "checkpoint")
def test_checkpoint_fresh_worker(student, rng, ref):
    """A checkpoint written by save_checkpoint and reloaded in a fresh worker predicts the same"""
    models, train = student.module("models"), student.module("train")
    model = models.SmallCNN(1, 4, [3, 5], 3)
    student.call(model.train, want="none")
    X = rng.standard_normal((6, 1, 7, 7)).astype(np.float32)
    model(student.tensor(X + 1.0))  # BatchNorm running statistics move away from 0 and 1
    student.call(model.eval, want="none")
    before = np.asarray(model(student.tensor(X)))
    state = student.probe("state_dict", model)
    path = student.probe("scratch_dir") + "/model.pt"
    train.save_checkpoint(model, path)
    blob = student.probe("read_bytes", path)
    assert isinstance(blob, bytes) and blob[:2] == b"PK", (
        "save_checkpoint must write a file with torch.save (a zip archive)")
    student.fresh()  # the worker and its folder are gone: only the bytes survive, here
    path = student.probe("scratch_dir") + "/model.pt"
    student.probe("write_bytes", path, blob)
    summary = student.probe("checkpoint_summary", path)
    assert summary["keys"] == ["config", "model", "state_dict"] and summary["model"] == "SmallCNN", (
        f"the checkpoint holds keys {summary['keys']} and model {summary['model']!r}; expected "
        "{'model': 'SmallCNN', 'config': ..., 'state_dict': ...}")
    assert summary["config"] == {"in_channels": 1, "num_classes": 4, "channels": [3, 5],
                                 "kernel_size": 3}, f"checkpoint config {summary['config']}"
    assert sorted(summary["state_dict"]) == sorted(state), "the checkpoint's state_dict keys differ from the model's"
    for k, v in state.items():
        np.testing.assert_array_equal(summary["state_dict"][k], v, err_msg=f"checkpoint entry {k}")
    train = student.module("train")
    loaded = train.load_checkpoint(path, "cpu")
    modes = student.probe("modes", loaded)
    assert not any(modes.values()), f"load_checkpoint must return the model in eval mode: {modes}"
    assert student.probe("devices", loaded) == ["cpu"]
    after = loaded(student.tensor(X))
    np.testing.assert_allclose(after, before, rtol=1e-6, atol=1e-6,
                               err_msg="the reloaded model predicts differently")
    mlp = student.module("models").MLP(5, [7, 3], 2, dropout=0.25)
    mlp_path = student.probe("scratch_dir") + "/mlp.pt"
    train.save_checkpoint(mlp, mlp_path)
    again = train.load_checkpoint(mlp_path)
    assert student.probe("checkpoint_summary", mlp_path)["config"] == {
        "in_features": 5, "hidden_sizes": [7, 3], "num_classes": 2, "dropout": 0.25}
    Xm = student.tensor(rng.standard_normal((3, 5)), "float32")
    student.call(mlp.eval, want="none")
    np.testing.assert_allclose(again(Xm), mlp(Xm), rtol=1e-6, err_msg="the reloaded MLP predicts differently")
