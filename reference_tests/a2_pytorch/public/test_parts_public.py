"""Public tests for A2: small examples with known answers.

Run them with `autograder check a2` in your assignment folder. They run your code in a
separate process through the `student` fixture; the graded (hidden) tests do the same
with finite-difference gradient checks, random batch sizes and architectures,
initialization statistics, closed-form optimizer and schedule values, held-out accuracy,
checkpoints reloaded in a fresh process, CPU/GPU agreement and a speed comparison.
"""

import math

import numpy as np
import pytest

pytestmark = [pytest.mark.visibility("visible")]


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "autograd")
@pytest.mark.hint("Save s = sigmoid(x) with ctx.save_for_backward(s); backward returns "
                  "grad_out * s * (1 - s).")
def test_sigmoid_function(student):
    """SigmoidFunction: values at 0 and +-large, and the gradient s * (1 - s)"""
    fns = student.module("autograd_fns")
    x = np.array([-1000.0, -2.0, 0.0, 2.0, 1000.0])
    res = student.probe("autograd_grads", fns.sigmoid,
                        [student.tensor(x, "float64", requires_grad=True)], student.tensor(np.ones(5)))
    s = 0.5 * (1 + np.tanh(0.5 * x))  # 1 / (1 + exp(-x)) without overflow
    np.testing.assert_allclose(res["out"], s, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(res["grads"][0], s * (1 - s), rtol=1e-10, atol=1e-300)


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "autograd")
@pytest.mark.hint("forward: x @ weight.T + bias; backward: (grad_out @ W, grad_out.T @ x, "
                  "grad_out.sum(0)).")
def test_linear_function(student):
    """LinearFunction: y = x W^T + b and gradients of the right shapes"""
    fns = student.module("autograd_fns")
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((4, 3)), rng.standard_normal((2, 3)), rng.standard_normal(2)
    g = rng.standard_normal((4, 2))
    res = student.probe("autograd_grads", fns.linear,
                        [student.tensor(a, requires_grad=True) for a in (x, w, b)],
                        student.tensor(g))
    np.testing.assert_allclose(res["out"], x @ w.T + b, rtol=1e-10)
    dx, dw, db = res["grads"]
    np.testing.assert_allclose(dx, g @ w, rtol=1e-10)
    np.testing.assert_allclose(dw, g.T @ x, rtol=1e-10)
    np.testing.assert_allclose(db, g.sum(axis=0), rtol=1e-10)


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "autograd")
@pytest.mark.hint("With equal scores every class has probability 1/C: the loss is log C.")
def test_cross_entropy_uniform(student):
    """CrossEntropyFunction of equal scores is log(C); its gradient (1/C - onehot) / N"""
    fns = student.module("autograd_fns")
    n, c = 4, 5
    y = np.array([0, 1, 4, 2])
    res = student.probe("autograd_grads", fns.cross_entropy,
                        [student.tensor(np.zeros((n, c)), requires_grad=True), student.tensor(y)],
                        student.tensor(np.array(1.0)))
    assert float(res["out"]) == pytest.approx(math.log(c))
    expected = (np.full((n, c), 1 / c) - np.eye(c)[y]) / n
    np.testing.assert_allclose(res["grads"][0], expected, rtol=1e-10)


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "models")
@pytest.mark.hint("Flatten, then Linear-ReLU-Dropout per hidden size, then a last Linear.")
def test_mlp_shape_and_parameters(student):
    """MLP(64, [32, 16], 10): scores (N, 10) and 64*32+32 + 32*16+16 + 16*10+10 parameters"""
    models = student.module("models")
    model = models.MLP(64, [32, 16], 10)
    out = model(student.tensor(np.zeros((5, 1, 8, 8)), "float32"))
    assert out.shape == (5, 10), f"MLP returned shape {out.shape}, expected (5, 10)"
    count = student.probe("count_parameters", model)
    assert count == 64 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "models")
@pytest.mark.hint("padding = kernel_size // 2 keeps the size; stride 2 on the first conv of "
                  "BlockDownSample halves it (rounding up).")
def test_cnn_blocks_shapes(student):
    """Block keeps the spatial size, BlockDownSample halves it, SmallCNN gives (N, classes)"""
    models = student.module("models")
    x = student.tensor(np.random.default_rng(0).standard_normal((2, 3, 7, 7)), "float32")
    assert models.Block(3, 4)(x).shape == (2, 4, 7, 7)
    assert models.BlockDownSample(3, 4)(x).shape == (2, 4, 4, 4)
    assert models.SmallCNN(3, 6, [4, 5, 6])(x).shape == (2, 6)


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "data")
@pytest.mark.hint("ds[i] is (image, label); the loader keeps the last, smaller batch.")
def test_dataset_and_loader(student):
    """DigitsDataset yields (image, label); make_loader batches 10 samples as 4 + 4 + 2"""
    data = student.module("data")
    images = np.arange(10 * 1 * 2 * 2, dtype=np.float32).reshape(10, 1, 2, 2)
    labels = np.arange(10) % 3
    ds = data.DigitsDataset(student.tensor(images), student.tensor(labels))
    assert student.probe("length", ds) == 10
    (img, lab), = student.probe("items", ds, [3])
    np.testing.assert_array_equal(img, images[3])
    assert int(lab) == labels[3]
    loader = data.make_loader(ds, 4)
    got = student.probe("batches", loader)
    assert [b[0].shape for b in got] == [(4, 1, 2, 2), (4, 1, 2, 2), (2, 1, 2, 2)]
    np.testing.assert_array_equal(np.concatenate([b[1] for b in got]), labels)


@pytest.mark.points(1)
@pytest.mark.tags("convergence", "schedules")
@pytest.mark.hint("StepLR(optimizer, step_size, gamma): the rate is multiplied by gamma "
                  "every step_size steps.")
def test_step_schedule(student):
    """make_scheduler('step'): lr 0.1, 0.1, 0.05, 0.05, 0.025 with step_size 2, gamma 0.5"""
    models, train = student.module("models"), student.module("train")
    model = models.MLP(4, [], 2)
    opt = train.make_optimizer(model, "sgd", lr=0.1)
    sched = train.make_scheduler(opt, "step", epochs=5, step_size=2, gamma=0.5)
    rates = student.probe("lr_trace", opt, sched, 5)
    np.testing.assert_allclose(rates, [0.1, 0.1, 0.05, 0.05, 0.025], rtol=1e-12)


@pytest.mark.points(1)
@pytest.mark.tags("convergence", "training")
@pytest.mark.hint("One entry per epoch in each list of the history.")
def test_fit_history(student):
    """fit returns a history with one value per epoch, and learns two separated blobs"""
    models, data, train = (student.module(m) for m in ("models", "data", "train"))
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(-2, 0.5, (20, 2)), rng.normal(2, 0.5, (20, 2))])
    y = np.repeat([0, 1], 20)
    ds = data.DigitsDataset(student.tensor(X, "float32"), student.tensor(y))
    model = models.MLP(2, [8], 2)
    opt = train.make_optimizer(model, "adam", lr=0.05)
    hist = train.fit(model, data.make_loader(ds, 8, shuffle=True), data.make_loader(ds, 40),
                     opt, epochs=4)
    keys = ["lr", "train_acc", "train_loss", "val_acc", "val_loss"]
    assert isinstance(hist, dict) and sorted(hist) == keys, f"history keys: {sorted(hist)}"
    assert all(len(hist[k]) == 4 for k in keys)
    assert hist["val_acc"][-1] > 0.9
