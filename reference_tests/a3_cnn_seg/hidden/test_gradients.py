"""Hidden: loss values against closed forms and the grader's definitions; autograd's
gradients against float64 central differences computed in the grader; the contract of
the student's own loss.

Values first: a gradient check of a wrong function proves nothing, so every gradient test
first requires the value to equal the grader's reference (conftest.Ref) on the same
inputs. Gradients are autograd's (through the ``input_grad`` probe, float64); the grader
perturbs the input, calls the student's function through the proxy and compares. A
``.detach()``, ``.item()``, a trip through numpy, an argmax or a threshold shows here.
"""

import numpy as np
import pytest

pytestmark = [pytest.mark.visibility("after_published")]


def _probs(rng, shape, sharp=1.0):
    z = sharp * rng.standard_normal(shape)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _onehot(masks, c):
    return (masks[:, None] == np.arange(c)[None, :, None, None]).astype(np.float64)


def _scalar(value, what, dtype=np.float64):
    arr = np.asarray(value) if isinstance(value, np.ndarray | float | int) else None
    assert arr is not None and arr.shape == () and np.issubdtype(arr.dtype, np.floating), (
        f"{what} returned {type(value).__name__}"
        f"{' of shape ' + str(np.shape(value)) if isinstance(value, np.ndarray) else ''}, "
        "expected a 0-d tensor")
    assert arr.dtype == dtype, f"{what} returned {arr.dtype} for {np.dtype(dtype).name} inputs"
    assert np.isfinite(arr), f"{what} returned {float(arr)}"
    return float(arr)


# ---------------------------------------------------------------- soft Dice


@pytest.mark.points(2)
@pytest.mark.tags("gradients", "dice")
def test_soft_dice_closed_forms(student, ref, rng):
    """soft_dice: 1 when perfect or absent, 2pk/(pM+k) for constant p, 0 when disjoint"""
    losses = student.module("losses")
    t = np.zeros((2, 3, 5, 4))
    t[0, 0, :2], t[0, 1, 2:], t[1, 0] = 1.0, 1.0, 1.0  # class 2 absent in image 0, 1, 2 in 1
    perfect = losses.soft_dice(student.tensor(t), student.tensor(t))
    ref.assert_close("losses.soft_dice(target, target)", perfect, np.ones((2, 3)), rtol=1e-9,
                     atol=1e-9, hint="eps in numerator and denominator: an absent class gives 1")
    for p in (0.3, 0.8):
        got = losses.soft_dice(student.tensor(np.full_like(t, p)), student.tensor(t))
        k, m = t.sum(axis=(2, 3)), 20
        ref.assert_close(f"losses.soft_dice(constant {p}, target)", got,
                         (2 * p * k + 1e-6) / (p * m + k + 1e-6), rtol=1e-9, atol=1e-9)
    for eps in (0.5, 3.0):  # the eps argument is used, in both places
        got = losses.soft_dice(student.tensor(np.full_like(t, 0.3)), student.tensor(t), eps=eps)
        k = t.sum(axis=(2, 3))
        ref.assert_close(f"losses.soft_dice(constant 0.3, target, eps={eps})", got,
                         (0.6 * k + eps) / (0.3 * 20 + k + eps), rtol=1e-9, atol=1e-9)
    disjoint = losses.soft_dice(student.tensor(1.0 - t), student.tensor(t))
    ref.assert_close("losses.soft_dice(1 - target, target)", disjoint, ref.soft_dice(1 - t, t),
                     rtol=1e-9, atol=1e-9)
    p = _probs(rng, (3, 4, 6, 7))
    y = _onehot(rng.integers(0, 4, (3, 6, 7)), 4)
    got32 = np.asarray(losses.soft_dice(student.tensor(p, "float32"), student.tensor(y, "float32")))
    assert got32.dtype == np.float32, f"losses.soft_dice returned {got32.dtype} for float32 inputs"
    ref.assert_close("losses.soft_dice (random)", got32, ref.soft_dice(p, y))


@pytest.mark.points(2)
@pytest.mark.tags("gradients", "dice")
def test_soft_dice_gradient(student, ref, rng, autograd_check):
    """soft_dice: autograd's gradient matches central differences (float64)"""
    losses = student.module("losses")
    p = _probs(rng, (2, 3, 5, 6))
    y = _onehot(rng.integers(0, 3, (2, 5, 6)), 3)
    ref.assert_close("losses.soft_dice", losses.soft_dice(student.tensor(p), student.tensor(y)),
                     ref.soft_dice(p, y), rtol=1e-9, atol=1e-9)
    dout = rng.standard_normal((2, 3))
    autograd_check(losses.soft_dice, p, (y,), rng, "losses.soft_dice", dout=dout)


@pytest.mark.points(2)
@pytest.mark.tags("gradients", "dice")
def test_dice_loss_value_and_gradient(student, ref, rng, autograd_check):
    """dice_loss: 1 - mean foreground soft Dice of softmax(logits); gradient by differences"""
    losses = student.module("losses")
    logits = 2.0 * rng.standard_normal((3, 4, 5, 5))
    masks = rng.integers(0, 4, (3, 5, 5))
    masks[0] = 0  # an image with background only
    got = _scalar(losses.dice_loss(student.tensor(logits), student.tensor(masks)),
                  "losses.dice_loss")
    expected = ref.dice_loss(logits, masks)
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12), (
        f"losses.dice_loss = {got:.10g}, expected {expected:.10g} (1 - mean soft Dice over "
        "the images and the foreground classes 1..C-1 of softmax(logits))")
    got = _scalar(losses.dice_loss(student.tensor(logits), student.tensor(masks), eps=2.0),
                  "losses.dice_loss")
    assert got == pytest.approx(ref.dice_loss(logits, masks, 2.0), rel=1e-9), (
        f"losses.dice_loss(eps=2.0) = {got:.10g}, expected {ref.dice_loss(logits, masks, 2.0):.10g}"
        ": pass eps on to the soft Dice")
    autograd_check(losses.dice_loss, logits, (masks,), rng, "losses.dice_loss")


@pytest.mark.points(2)
@pytest.mark.tags("gradients", "focal")
def test_focal_loss_values_and_gradient(student, ref, rng, autograd_check):
    """focal_loss: the definition for several gamma; gradient by central differences"""
    losses = student.module("losses")
    logits = 1.5 * rng.standard_normal((2, 3, 4, 6))
    masks = rng.integers(0, 3, (2, 4, 6))
    for gamma in (0.0, 0.5, 2.0, 3.0):
        got = _scalar(losses.focal_loss(student.tensor(logits), student.tensor(masks),
                                        gamma=gamma), "losses.focal_loss")
        expected = ref.focal(logits, masks, gamma)
        assert got == pytest.approx(expected, rel=1e-9), (
            f"losses.focal_loss(gamma={gamma}) = {got:.10g}, expected {expected:.10g} "
            "(mean over pixels of -(1 - p_t)**gamma log p_t)")
    default = _scalar(losses.focal_loss(student.tensor(logits), student.tensor(masks)),
                      "losses.focal_loss")
    assert default == pytest.approx(ref.focal(logits, masks, 2.0), rel=1e-9), (
        "losses.focal_loss: the default gamma is 2")
    autograd_check(losses.focal_loss, logits, (masks, 2.0), rng, "losses.focal_loss")


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "focal")
def test_focal_loss_is_stable(student, ref, rng):
    """focal_loss stays finite and right for confident float32 logits (log_softmax)"""
    losses = student.module("losses")
    logits = 80.0 * rng.standard_normal((2, 3, 4, 4))
    masks = rng.integers(0, 3, (2, 4, 4))
    for gamma in (0.0, 2.0):
        got = _scalar(losses.focal_loss(student.tensor(logits, "float32"), student.tensor(masks),
                                        gamma=gamma), "losses.focal_loss", np.float32)
        expected = ref.focal(logits.astype(np.float32), masks, gamma)
        assert got == pytest.approx(expected, rel=1e-4), (
            f"losses.focal_loss(gamma={gamma}) = {got:.6g} for logits of size ~100, expected "
            f"{expected:.6g}: compute log p_t with log_softmax, not log(softmax)")


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "seg_loss")
def test_seg_loss_combination(student, ref, rng, autograd_check):
    """seg_loss = (1 - w) focal(gamma) + w dice_loss, defaults w = 0.5 and gamma = 0"""
    losses = student.module("losses")
    logits = rng.standard_normal((2, 4, 5, 5))
    masks = rng.integers(0, 4, (2, 5, 5))
    lt, mt = student.tensor(logits), student.tensor(masks)
    got = _scalar(losses.seg_loss(lt, mt), "losses.seg_loss")
    assert got == pytest.approx(ref.seg_loss(logits, masks), rel=1e-9), (
        f"losses.seg_loss(logits, masks) = {got:.10g}, expected "
        f"{ref.seg_loss(logits, masks):.10g} (0.5 cross-entropy + 0.5 Dice loss)")
    for w, gamma in ((0.0, 0.0), (1.0, 0.0), (0.3, 2.0)):
        got = _scalar(losses.seg_loss(lt, mt, dice_weight=w, gamma=gamma), "losses.seg_loss")
        expected = ref.seg_loss(logits, masks, w, gamma)
        assert got == pytest.approx(expected, rel=1e-9), (
            f"losses.seg_loss(dice_weight={w}, gamma={gamma}) = {got:.10g}, expected "
            f"{expected:.10g}")
    autograd_check(losses.seg_loss, logits, (masks,), rng, "losses.seg_loss")


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "losses")
def test_losses_keep_dtype_and_inputs(student, rng):
    """Every loss returns a 0-d tensor of its input's dtype; no function modifies its inputs"""
    losses, train = student.module("losses"), student.module("train")
    logits = rng.standard_normal((2, 3, 4, 5))
    masks = rng.integers(0, 3, (2, 4, 5))
    probs = _probs(rng, (2, 3, 4, 5))
    target = _onehot(masks, 3)
    heat = rng.standard_normal((2, 2, 4, 5))
    marks = rng.uniform(0, 4, (2, 2, 2))
    for name, fn, args in (("losses.soft_dice", losses.soft_dice, (probs, target)),
                           ("train.soft_argmax", train.soft_argmax, (heat,))):
        handles = [student.put(student.tensor(a)) for a in args]
        student.call(fn, *handles)
        for a, h in zip(args, handles, strict=True):
            assert np.array_equal(np.asarray(student.fetch(h)), a), (
                f"{name} modified its input in place")
    cases = [("losses.dice_loss", losses.dice_loss, (logits, masks)),
             ("losses.focal_loss", losses.focal_loss, (logits, masks)),
             ("losses.seg_loss", losses.seg_loss, (logits, masks)),
             ("losses.my_loss", losses.my_loss, (probs, target)),
             ("train.landmark_loss", train.landmark_loss, (heat, marks))]
    for dtype in (np.float32, np.float64):
        for name, fn, args in cases:
            handles = [student.put(student.tensor(a.astype(dtype) if a.dtype.kind == "f" else a))
                       for a in args]
            _scalar(student.call(fn, *handles), name, dtype)
            for a, h in zip(args, handles, strict=True):
                after = np.asarray(student.fetch(h))
                expected = a.astype(dtype) if a.dtype.kind == "f" else a
                assert np.array_equal(after, expected), f"{name} modified its input in place"


# ---------------------------------------------------------------- landmarks


@pytest.mark.points(2)
@pytest.mark.tags("gradients", "landmarks")
def test_soft_argmax_values_and_gradient(student, ref, rng, autograd_check):
    """soft_argmax: expected (row, col) under the softmax of each map; gradient checked"""
    train = student.module("train")
    heat = 2.0 * rng.standard_normal((2, 3, 7, 5))
    got = train.soft_argmax(student.tensor(heat))
    ref.assert_close("train.soft_argmax", got, ref.soft_argmax(heat), rtol=1e-9, atol=1e-9,
                     hint="(row, col) order: row = sum p[i, j] * i over all H*W pixels")
    got32 = np.asarray(train.soft_argmax(student.tensor(heat, "float32")))
    assert got32.dtype == np.float32, f"train.soft_argmax returned {got32.dtype} for float32"
    dout = rng.standard_normal((2, 3, 2))
    autograd_check(train.soft_argmax, heat, (), rng, "train.soft_argmax", dout=dout)


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "landmarks")
def test_landmark_loss_value_and_gradient(student, ref, rng, autograd_check):
    """landmark_loss: mean squared distance in pixels^2; gradient checked"""
    train = student.module("train")
    heat = 2.0 * rng.standard_normal((3, 2, 6, 6))
    marks = rng.uniform(0, 5, (3, 2, 2))
    got = _scalar(train.landmark_loss(student.tensor(heat), student.tensor(marks)),
                  "train.landmark_loss")
    expected = ref.landmark_loss(heat, marks)
    assert got == pytest.approx(expected, rel=1e-9), (
        f"train.landmark_loss = {got:.10g}, expected {expected:.10g} (mean over images and "
        "landmarks of the squared Euclidean distance)")
    autograd_check(train.landmark_loss, heat, (marks,), rng, "train.landmark_loss")


# ---------------------------------------------------------------- the student's own loss


def _my_loss(student, losses, probs, target, dtype="float64"):
    value = losses.my_loss(student.tensor(probs, dtype), student.tensor(target, dtype))
    return _scalar(value, "losses.my_loss", np.dtype(dtype))


@pytest.mark.points(2)
@pytest.mark.tags("gradients", "my_loss")
def test_my_loss_zero_iff_perfect(student, rng):
    """my_loss: 0 at a perfect prediction, positive when a pixel is wrong, finite at 0 and 1"""
    losses = student.module("losses")
    for n, c, h, w in ((1, 2, 8, 8), (3, 4, 6, 5), (2, 3, 1, 1)):
        masks = rng.integers(0, c, (n, h, w))
        target = _onehot(masks, c)
        perfect = _my_loss(student, losses, target, target)
        assert abs(perfect) <= 1e-6, (
            f"losses.my_loss(target, target) = {perfect:.3g} for (N, C, H, W) = {(n, c, h, w)}, "
            "expected 0")
        wrong = target.copy()
        i, j = rng.integers(0, h), rng.integers(0, w)
        true = masks[0, i, j]
        wrong[0, :, i, j] = 0.0
        wrong[0, (true + 1) % c, i, j] = 1.0  # one pixel fully wrong: p_true = 0 exactly
        value = _my_loss(student, losses, wrong, target)
        assert value > 1e-7, (
            f"losses.my_loss = {value:.3g} with one pixel of {h}x{w} fully wrong, expected > 0")
        unsure = target.copy()  # p_true = 0.4 at one pixel, the rest spread evenly
        unsure[0, :, i, j] = np.where(target[0, :, i, j] == 1, 0.4, 0.6 / (c - 1))
        value = _my_loss(student, losses, unsure, target)
        assert value > 1e-7, f"losses.my_loss = {value:.3g} with p_true = 0.4 at one pixel"
        for dtype in ("float32", "float64"):
            value = _my_loss(student, losses, 1.0 - target, target, dtype)  # everything wrong
            assert value > 0, f"losses.my_loss({dtype}) = {value} for an all-wrong prediction"


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "my_loss")
def test_my_loss_nonnegative_and_finite(student, rng):
    """my_loss: finite and >= 0 on random predictions, sharp ones and any batch size"""
    losses = student.module("losses")
    for k, (n, c, h, w) in enumerate(((1, 2, 5, 7), (4, 4, 8, 8), (2, 5, 3, 3), (7, 3, 4, 4))):
        p = _probs(rng, (n, c, h, w), sharp=[1.0, 5.0, 50.0, 500.0][k])
        t = _onehot(rng.integers(0, c, (n, h, w)), c)
        for dtype in ("float32", "float64"):
            value = _my_loss(student, losses, p, t, dtype)
            assert value >= 0.0, f"losses.my_loss = {value} < 0 for {(n, c, h, w)} {dtype}"


@pytest.mark.points(2)
@pytest.mark.tags("gradients", "my_loss")
def test_my_loss_is_batch_mean(student, rng):
    """my_loss of a batch is the mean of my_loss of its images (any batch size)"""
    losses = student.module("losses")
    n, c, h, w = 5, 4, 6, 6
    p = _probs(rng, (n, c, h, w), sharp=2.0)
    t = _onehot(rng.integers(0, c, (n, h, w)), c)
    t[1] = _onehot(np.zeros((1, h, w), int), c)[0]  # an image with one class only
    singles = [_my_loss(student, losses, p[i:i + 1], t[i:i + 1]) for i in range(n)]
    for size in (2, 3, 5):
        batch = _my_loss(student, losses, p[:size], t[:size])
        expected = float(np.mean(singles[:size]))
        assert batch == pytest.approx(expected, rel=1e-6, abs=1e-9), (
            f"losses.my_loss of {size} images = {batch:.8g}, but the mean of the "
            f"{size} single-image losses is {expected:.8g}: reduce with a mean over the batch "
            "of per-image losses")


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "my_loss")
def test_my_loss_decreases_towards_target(student, rng):
    """my_loss does not increase along the straight path from a prediction to the target"""
    losses = student.module("losses")
    for n, c, h, w in ((2, 3, 6, 6), (1, 4, 5, 4)):
        p = _probs(rng, (n, c, h, w), sharp=2.0)
        t = _onehot(rng.integers(0, c, (n, h, w)), c)
        values = [_my_loss(student, losses, (1 - a) * p + a * t, t)
                  for a in (0.0, 0.2, 0.4, 0.6, 0.8, 0.95, 1.0)]
        steps = np.diff(values)
        assert np.all(steps <= 1e-9 * max(1.0, abs(values[0]))), (
            f"losses.my_loss along (1 - a) probs + a target for a = 0, 0.2, ..., 1: "
            f"{[round(v, 6) for v in values]}; it must not increase")
        assert values[0] > values[-1], "losses.my_loss is the same for a wrong and a perfect one"


@pytest.mark.points(2)
@pytest.mark.tags("gradients", "my_loss")
def test_my_loss_gradient(student, rng, autograd_check):
    """my_loss: autograd's gradient is finite and matches central differences (float64)"""
    losses = student.module("losses")
    p = np.clip(_probs(rng, (2, 3, 5, 5), sharp=1.5), 0.02, None)
    p /= p.sum(axis=1, keepdims=True)
    t = _onehot(rng.integers(0, 3, (2, 5, 5)), 3)
    grad = autograd_check(losses.my_loss, p, (t,), rng, "losses.my_loss", tol=1e-5)
    assert np.all(np.isfinite(grad)) and np.any(grad != 0), (
        "losses.my_loss: the gradient is zero or not finite")
