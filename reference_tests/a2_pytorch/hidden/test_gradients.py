"""Hidden: the custom autograd functions against float64 central differences.

The grader computes the finite differences itself: every perturbed input travels to the
worker as a float64 tensor, the student's forward runs there (``student.map``: one round
trip per batch) and the output comes back by value. The analytic gradient is what
``backward`` gave through ``out.backward(grad_out)`` (the ``autograd_grads`` probe).
The forward output must first equal the grader's definition: the gradient of a wrong
forward proves nothing. ``torch.autograd.gradcheck`` runs in the worker as a second
opinion only (the worker is untrusted).
"""

import numpy as np
import pytest

from autograder.testing import numerical_gradient, rel_error

pytestmark = [pytest.mark.visibility("after_published")]

FORWARD_FIRST = "fix the forward pass first: this test checks the gradient of a correct forward"


def _check(student, ref, fn, name, inputs, grad_inputs, reference, grad_out, tol=1e-5):
    """``fn(*inputs)`` equals ``reference(*inputs)``; the gradients ``backward`` gives for
    the inputs listed in ``grad_inputs`` match central differences of ``fn``."""
    def send(values, with_grad=False):
        return [student.tensor(v, requires_grad=with_grad and i in grad_inputs)
                if isinstance(v, np.ndarray) else v for i, v in enumerate(values)]

    res = student.probe("autograd_grads", fn, send(inputs, True), student.tensor(grad_out))
    assert isinstance(res, dict), f"{name}: autograd returned {res!r}"
    assert np.asarray(res["out"]).dtype == np.float64, (
        f"{name} returned {np.asarray(res['out']).dtype} for float64 inputs; keep the dtype")
    ref.assert_close(f"{name} forward output", res["out"], reference(*inputs), rtol=1e-9,
                     hint="the definition in the README")
    for i in grad_inputs:
        analytic = res["grads"][i]
        assert analytic is not None, (
            f"{name}: input {i} received no gradient; backward must return one per input")
        analytic = np.asarray(analytic, np.float64)
        assert analytic.shape == inputs[i].shape, (
            f"{name}: the gradient of input {i} has shape {analytic.shape}, expected "
            f"{inputs[i].shape}")

        def f_batch(values, i=i):
            calls = []
            for v in values:
                args = list(inputs)
                args[i] = v
                calls.append(tuple(send(args)))
            return student.map(fn, calls)

        numeric = numerical_gradient(None, inputs[i], grad_out, f_batch=f_batch)
        err = rel_error(numeric, analytic)
        assert err < tol, (
            f"{name}: the gradient of input {i} has relative error {err:.2e} against the "
            f"numerical gradient (tolerance {tol:g})")
    ok = student.probe("gradcheck", fn, send(inputs, True))
    assert ok is True, f"{name}: torch.autograd.gradcheck failed in the worker"


@pytest.mark.points(2)
@pytest.mark.tags("gradients", "autograd")
def test_sigmoid_gradient(student, rng, ref):
    """SigmoidFunction: forward and backward against float64 finite differences"""
    fns = student.module("autograd_fns")
    x = 3.0 * rng.standard_normal((4, 5))
    _check(student, ref, fns.sigmoid, "SigmoidFunction", [x], [0], ref.sigmoid,
           rng.standard_normal((4, 5)))


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "autograd")
def test_sigmoid_large_inputs(student, ref):
    """SigmoidFunction: finite values and gradients for |x| up to 1000 (float32 and float64)"""
    fns = student.module("autograd_fns")
    x = np.array([-1000.0, -100.0, -30.0, 0.0, 30.0, 100.0, 1000.0])
    for dtype in ("float32", "float64"):
        res = student.probe("autograd_grads", fns.sigmoid,
                            [student.tensor(x, dtype, requires_grad=True)],
                            student.tensor(np.ones_like(x), dtype))
        out, grad = np.asarray(res["out"]), np.asarray(res["grads"][0])
        assert out.dtype == np.dtype(dtype), f"SigmoidFunction returned {out.dtype} for {dtype}"
        assert np.all(np.isfinite(out)) and np.all(np.isfinite(grad)), (
            f"SigmoidFunction gives inf or nan for large |x| in {dtype}: {out}, {grad}")
        s = ref.sigmoid(x)
        ref.assert_close(f"SigmoidFunction ({dtype})", out, s, rtol=1e-6)
        ref.assert_close(f"SigmoidFunction gradient ({dtype})", grad, s * (1 - s), rtol=1e-6)


@pytest.mark.points(2)
@pytest.mark.tags("gradients", "autograd")
def test_linear_gradient(student, rng, ref):
    """LinearFunction: x, weight and bias gradients against float64 finite differences; float32 kept"""
    fns = student.module("autograd_fns")
    x, w, b = rng.standard_normal((5, 4)), rng.standard_normal((3, 4)), rng.standard_normal(3)
    g = rng.standard_normal((5, 3))
    _check(student, ref, fns.linear, "LinearFunction", [x, w, b], [0, 1, 2], ref.linear, g)
    res = student.probe("autograd_grads", fns.linear,
                        [student.tensor(a, "float32", requires_grad=True) for a in (x, w, b)],
                        student.tensor(g, "float32"))
    grads = list(res["grads"]) + [None] * (3 - len(res["grads"]))
    for what, value in (("output", res["out"]), *zip(("dx", "dweight", "dbias"), grads[:3], strict=True)):
        assert np.asarray(value).dtype == np.float32, (
            f"LinearFunction: the {what} is {np.asarray(value).dtype} for float32 inputs; keep the dtype")
    ref.assert_close("LinearFunction output (float32)", res["out"], ref.linear(x, w, b), rtol=1e-4)


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "autograd")
def test_linear_without_bias(student, rng, ref):
    """LinearFunction with bias None: y = x W^T, gradients of x and W"""
    fns = student.module("autograd_fns")
    x, w = rng.standard_normal((3, 2)), rng.standard_normal((4, 2))
    _check(student, ref, fns.linear, "LinearFunction (bias None)", [x, w, None], [0, 1],
           lambda x, w, b: ref.linear(x, w, None), rng.standard_normal((3, 4)))


@pytest.mark.points(2)
@pytest.mark.tags("gradients", "autograd")
def test_cross_entropy_gradient(student, rng, ref):
    """CrossEntropyFunction: scores gradient against finite differences (upstream gradient 2.5)"""
    fns = student.module("autograd_fns")
    scores = 2.0 * rng.standard_normal((6, 4))
    y = rng.integers(0, 4, 6)
    _check(student, ref, fns.cross_entropy, "CrossEntropyFunction", [scores, y], [0],
           lambda s, y: ref.cross_entropy(s, y)[0], np.array(2.5))


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "autograd")
def test_cross_entropy_large_scores(student, rng, ref):
    """CrossEntropyFunction: finite and right for scores of size 1000 in float32 (stability)"""
    fns = student.module("autograd_fns")
    scores = 1000.0 * rng.standard_normal((5, 3))
    y = rng.integers(0, 3, 5)
    res = student.probe("autograd_grads", fns.cross_entropy,
                        [student.tensor(scores, "float32", requires_grad=True), student.tensor(y)],
                        student.tensor(np.array(1.0), "float32"))
    expected, dscores = ref.cross_entropy(scores.astype(np.float32), y)
    out = np.asarray(res["out"])
    assert out.shape == () and out.dtype == np.float32, (
        f"CrossEntropyFunction returned {out.dtype}{list(out.shape)}, expected a 0-d float32")
    assert np.isfinite(out), f"CrossEntropyFunction is {out} for large scores: subtract the row maximum"
    assert float(out) == pytest.approx(expected, rel=1e-4), (
        f"CrossEntropyFunction is {float(out)}, expected {expected}")
    ref.assert_close("CrossEntropyFunction gradient", res["grads"][0], dscores, rtol=1e-4)


@pytest.mark.points(2)
@pytest.mark.tags("gradients", "training")
@pytest.mark.hint("Clear the gradients before each backward pass (optimizer.zero_grad()).")
def test_train_step_gradients(student, rng, ref):
    """train_step: loss, count and SGD update of an MLP match the mean cross-entropy's gradient, twice"""
    models, train = student.module("models"), student.module("train")
    model = student.call(models.MLP(6, [5, 4], 3).double, want="handle")
    state = student.probe("state_dict", model)
    layers = ref.check_structure("MLP(6, [5, 4], 3)", state, ref.mlp_shapes(6, [5, 4], 3))
    opt = train.make_optimizer(model, "sgd", lr=0.3)
    X, y = rng.standard_normal((7, 6)), rng.integers(0, 3, 7)
    for step in range(2):  # twice: gradients must not pile up across steps
        student.call(model.eval, want="none")  # train_step must switch to training mode
        loss, scores, grads = ref.mlp_backward(layers, X, y)
        got = train.train_step(model, opt, student.tensor(X), student.tensor(y))
        assert isinstance(got, (tuple, list)) and len(got) == 2, (
            f"train_step returned {got!r}, expected (loss, correct)")
        assert isinstance(got[0], float) and got[0] == pytest.approx(loss, rel=1e-9), (
            f"train_step step {step + 1}: loss {got[0]!r}, expected {loss:.10g} (the mean "
            "cross-entropy before the step, as a float)")
        correct = int(np.sum(np.argmax(scores, axis=1) == y))
        assert got[1] == correct, f"train_step: correct is {got[1]!r}, expected {correct}"
        modes = student.probe("modes", model)
        assert all(modes.values()), f"train_step must put the model in training mode: {modes}"
        new_layers = ref.layers(student.probe("state_dict", model))
        for i, (old, new, (dw, db)) in enumerate(zip(layers, new_layers, grads, strict=True)):
            ref.assert_close(f"linear layer {i} weight after train_step {step + 1}",
                             new.tensors["weight"], old.tensors["weight"] - 0.3 * dw, rtol=1e-9)
            ref.assert_close(f"linear layer {i} bias after train_step {step + 1}",
                             new.tensors["bias"], old.tensors["bias"] - 0.3 * db, rtol=1e-9)
        layers = new_layers
