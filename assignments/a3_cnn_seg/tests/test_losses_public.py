"""Public tests for losses.py and train.py: known values on tiny inputs.

Run them with `autograder check a3`. The hidden tests add closed forms, gradients checked
by finite differences, the contract of your own loss, training on phantoms (Dice and
landmark error on phantoms the graders keep to themselves) and speed.
"""

import numpy as np
import pytest

pytestmark = [pytest.mark.visibility("visible")]


def _array(value, what):
    assert isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating), (
        f"{what} returned {type(value).__name__}, expected a floating tensor")
    return value


def _scalar(value, what):
    value = _array(value, what)
    assert value.shape == (), f"{what} returned shape {value.shape}, expected a 0-d tensor"
    return float(value)


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "dice")
def test_soft_dice_known_values(student):
    """soft_dice is 1 for a perfect prediction and 2*0.5*k / (0.5*M + k) for constant 0.5"""
    losses = student.module("losses")
    target = np.zeros((1, 2, 4, 4))
    target[0, 0, :2] = 1.0  # k = 8 of M = 16 pixels
    target[0, 1] = 1.0 - target[0, 0]
    perfect = _array(losses.soft_dice(student.tensor(target), student.tensor(target)),
                     "losses.soft_dice")
    assert perfect.shape == (1, 2), f"soft_dice returned shape {perfect.shape}, expected (1, 2)"
    np.testing.assert_allclose(perfect, 1.0, rtol=1e-6)
    half = np.full_like(target, 0.5)
    got = _array(losses.soft_dice(student.tensor(half), student.tensor(target)), "losses.soft_dice")
    np.testing.assert_allclose(got, 2 * 0.5 * 8 / (0.5 * 16 + 8), rtol=1e-5)


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "focal")
@pytest.mark.hint("Use log_softmax for log(p_t); gamma = 0 is the plain cross-entropy.")
def test_focal_loss_gamma_zero_is_cross_entropy(student):
    """focal_loss with gamma=0 is the mean cross-entropy over the pixels"""
    losses = student.module("losses")
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((2, 3, 4, 5))
    masks = rng.integers(0, 3, (2, 4, 5))
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = -np.take_along_axis(logp, masks[:, None], axis=1).mean()
    got = _scalar(losses.focal_loss(student.tensor(logits), student.tensor(masks), gamma=0.0),
                  "losses.focal_loss")
    assert got == pytest.approx(expected, rel=1e-8), (
        f"losses.focal_loss(gamma=0) = {got:.8g}, expected the cross-entropy {expected:.8g}")


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "landmarks")
def test_soft_argmax_peaked_heatmap(student):
    """soft_argmax of a sharply peaked heatmap is the position of the peak (row, col)"""
    train = student.module("train")
    heat = np.full((1, 2, 6, 7), -50.0)
    heat[0, 0, 2, 5] = 50.0
    heat[0, 1, 4, 1] = 50.0
    got = _array(train.soft_argmax(student.tensor(heat)), "train.soft_argmax")
    assert got.shape == (1, 2, 2), f"soft_argmax returned shape {got.shape}, expected (1, 2, 2)"
    np.testing.assert_allclose(got, [[[2.0, 5.0], [4.0, 1.0]]], atol=1e-6)


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "my_loss")
def test_my_loss_zero_at_perfect_prediction(student):
    """my_loss is 0 for a perfect prediction and positive for a wrong one"""
    losses = student.module("losses")
    masks = np.random.default_rng(4).integers(0, 3, (2, 6, 6))
    target = (masks[:, None] == np.arange(3)[None, :, None, None]).astype(np.float32)
    perfect = _scalar(losses.my_loss(student.tensor(target), student.tensor(target)),
                      "losses.my_loss")
    assert abs(perfect) <= 1e-6, f"my_loss(target, target) = {perfect}, expected 0"
    wrong = _scalar(losses.my_loss(student.tensor(target[:, ::-1].copy()), student.tensor(target)),
                    "losses.my_loss")
    assert wrong > 0, f"my_loss of a wrong prediction is {wrong}, expected > 0"
