"""Hidden: the same results on CPU and CUDA (run only where the worker has CUDA).

Each test runs its work once per device through ``assert_device_parity``: the worker is
set to deterministic torch with TF32 off and seeded alike before each run, inputs are
built with ``student.tensor(..., device=device)``, and the grader compares the results
within the tolerance of their dtype. The ``device`` arguments of ``fit``, ``evaluate``
and ``load_checkpoint`` are checked here: a function that ignores them runs on the CPU.
"""

import numpy as np
import pytest

from autograder.testing import assert_device_parity

pytestmark = [pytest.mark.visibility("after_published"), pytest.mark.gpu]


@pytest.mark.points(1)
@pytest.mark.tags("parity", "models")
def test_models_forward_parity(student, rng):
    """SmallCNN (train and eval mode) and MLP scores: the same on CPU and CUDA"""
    models = student.module("models")
    x = rng.standard_normal((8, 1, 8, 8)).astype(np.float32)

    def forward(device):
        cnn = student.call(models.SmallCNN().to, device, want="handle")
        xt = student.tensor(x, device=device)
        train_out = cnn(xt)
        student.call(cnn.eval, want="none")
        mlp = student.call(models.MLP(64, [32, 16], 10).to, device, want="handle")
        return {"cnn_train": train_out, "cnn_eval": cnn(xt), "mlp": mlp(xt)}

    assert_device_parity(student, forward)


@pytest.mark.points(1)
@pytest.mark.tags("parity", "autograd")
def test_autograd_parity(student, rng):
    """The custom autograd functions: outputs and gradients the same on CPU and CUDA"""
    fns = student.module("autograd_fns")
    x, w, b = rng.standard_normal((5, 4)), rng.standard_normal((3, 4)), rng.standard_normal(3)
    y = rng.integers(0, 3, 5)
    g_sigmoid, g_linear = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))

    def run(device):
        out = {}
        for name, fn, args, g in (("sigmoid", fns.sigmoid, [x], g_sigmoid),
                                  ("linear", fns.linear, [x, w, b], g_linear)):
            res = student.probe("autograd_grads", fn,
                                [student.tensor(a, requires_grad=True, device=device) for a in args],
                                student.tensor(g, device=device))
            out[name] = [res["out"], *res["grads"]]
        res = student.probe("autograd_grads", fns.cross_entropy,
                            [student.tensor(x[:, :3], requires_grad=True, device=device),
                             student.tensor(y, device=device)],
                            student.tensor(np.array(1.0), device=device))
        out["cross_entropy"] = [res["out"], res["grads"][0]]
        return out

    assert_device_parity(student, run)


@pytest.mark.points(2)
@pytest.mark.tags("parity", "training")
def test_fit_on_device(student, rng):
    """fit(device=...) trains on that device: history and weights the same on CPU and CUDA"""
    models, data, train = (student.module(m) for m in ("models", "data", "train"))
    X = rng.standard_normal((32, 1, 6, 6)).astype(np.float32)
    y = rng.integers(0, 3, 32)

    def run(device):
        model = models.SmallCNN(1, 3, [4, 6], 3)
        ds = data.DigitsDataset(student.tensor(X), student.tensor(y))
        opt = train.make_optimizer(model, "sgd", lr=0.05, momentum=0.9)
        hist = train.fit(model, data.make_loader(ds, 16), data.make_loader(ds, 32), opt,
                         epochs=2, device=device, seed=3)
        where = student.probe("devices", model)
        assert where == [device if device == "cpu" else "cuda:0"], (
            f"after fit(device={device!r}) the model is on {where}")
        loss, acc = train.evaluate(model, data.make_loader(ds, 32), device)
        accuracies.append([*hist.pop("train_acc"), *hist.pop("val_acc"), acc])
        return {"history": {k: np.asarray(v, np.float32) for k, v in hist.items()},
                "evaluate_loss": np.float32(loss),
                "state": student.probe("state_dict", model)}

    accuracies = []  # compared apart: a near-tie may flip one prediction of 32 across devices
    assert_device_parity(student, run, tolerances={"float32": (1e-3, 1e-4)})
    cpu, cuda = (np.asarray(a, np.float64) for a in accuracies)
    assert cpu.shape == cuda.shape and np.all(np.abs(cpu - cuda) <= 1 / 16 + 1e-9), (
        f"accuracies (train_acc, val_acc, evaluate) on CPU {cpu} and CUDA {cuda} disagree")


@pytest.mark.points(1)
@pytest.mark.tags("parity", "checkpoint")
def test_checkpoint_across_devices(student, rng):
    """A checkpoint saved from CUDA loads on the CPU (map_location) and on CUDA, predicting the same"""
    models, train = student.module("models"), student.module("train")
    x = rng.standard_normal((4, 1, 8, 8)).astype(np.float32)
    student.probe("deterministic_torch", 1)
    model = student.call(models.SmallCNN().to, "cuda", want="handle")
    student.call(model.eval, want="none")
    expected = model(student.tensor(x, device="cuda"))
    path = student.probe("scratch_dir") + "/gpu.pt"
    train.save_checkpoint(model, path)
    for device, name in (("cpu", "cpu"), ("cuda", "cuda:0")):
        loaded = train.load_checkpoint(path, device)
        assert student.probe("devices", loaded) == [name], (
            f"load_checkpoint(path, {device!r}) put the model on {student.probe('devices', loaded)}")
        np.testing.assert_allclose(loaded(student.tensor(x, device=device)), expected, rtol=1e-4,
                                   atol=1e-5, err_msg=f"checkpoint loaded on {device}")
