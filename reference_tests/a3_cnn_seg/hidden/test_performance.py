"""Hidden: speed relative to vectorized yardsticks measured on the same machine.

Times are measured by the grader around each round trip; the verdict is the ratio of the
minima over several repeats after a warm-up, so the machine's speed cancels out. Every
timed call gets its own random input (passed by value, inside the timed window, as for
the yardstick), and every timed result is checked against the grader's reference: caching
or lazy results gain nothing. The yardsticks (solutions/a3_cnn_seg/probes.py) run in a
worker that never loads student code.

Inputs are a few maps of 64x64 pixels, so the transfer stays small and the work per pixel
shows. Measured with one thread, three gradings each (ratio of minima; the yardstick's
round trip through its own worker costs a little more than the student's): reference
soft_dice 0.4-0.5x, loops over images and classes 0.6-1.0x, over pixel rows 1.2-1.5x,
over pixels 19-36x (limit 10x); reference soft_argmax 0.4-0.6x, loops over images and
landmarks 0.5-0.7x, over pixel rows 1.0-1.3x, over pixels 35-54x (limit 10x).
"""

import numpy as np
import pytest

pytestmark = [pytest.mark.visibility("after_published")]

REPEAT = 5


def _ratio(student, fn, yardstick, make_args, reference, what):
    """Ratio of the minimum times of ``fn(*args_i)`` and ``yardstick(*args_i)`` over fresh
    inputs; ``reference(*args_i)`` checks the timed results."""
    arrays = [make_args() for _ in range(REPEAT)]
    inputs = [tuple(student.tensor(a) for a in args) for args in arrays]
    warm = tuple(student.tensor(a) for a in make_args())
    student.time_probe(yardstick, *warm, repeat=0, warmup=1)
    t_yard = min(student.time_probe(yardstick, *a, repeat=1, warmup=0)[0] for a in inputs)
    student.time_call(fn, *warm, repeat=0, warmup=1)
    timed = []
    t_fn = min(student.time_call(fn, *a, repeat=1, warmup=0, results=timed)[0] for a in inputs)
    for args, out in zip(arrays, timed, strict=True):
        expected = reference(*args)
        got = np.asarray(out) if isinstance(out, np.ndarray) else None
        assert got is not None and got.shape == expected.shape, (
            f"{what} returned {type(out).__name__} in a timed call, expected an array of shape "
            f"{expected.shape}")
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5,
                                   err_msg=f"{what} gave a wrong result in a timed call")
    t_yard = min(t_yard, *(student.time_probe(yardstick, *a, repeat=1, warmup=0)[0]
                           for a in inputs))
    return t_fn / t_yard, t_fn, t_yard


@pytest.mark.points(2)
@pytest.mark.tags("performance", "dice")
@pytest.mark.call_timeout(30)
@pytest.mark.hint("Sum over the pixel axes with tensor operations: (probs * target).sum(dim=(2, 3)).")
def test_soft_dice_speed(student, ref, rng):
    """soft_dice is vectorized: at most 10x the time of a yardstick of three reductions"""
    losses = student.module("losses")
    shape = (2, 3, 64, 64)  # few maps of many pixels: the transfer stays small

    def make_args():
        p = rng.random(shape).astype(np.float32)
        t = (rng.random(shape) < 0.3).astype(np.float32)
        return (p, t)

    def reference(p, t):
        return ref.soft_dice(p, t)

    ratio, t_fn, t_yard = _ratio(student, losses.soft_dice, "soft_dice_yardstick", make_args,
                                 reference, "losses.soft_dice")
    assert ratio < 10, (
        f"losses.soft_dice took {t_fn * 1e3:.1f} ms, {ratio:.1f}x the vectorized yardstick "
        f"({t_yard * 1e3:.2f} ms) on inputs of shape {shape}; the limit is 10x")


@pytest.mark.points(2)
@pytest.mark.tags("performance", "landmarks")
@pytest.mark.call_timeout(30)
@pytest.mark.hint("One softmax over the flattened maps, then weighted sums with "
                  "torch.arange coordinates; no loops over pixels.")
def test_soft_argmax_speed(student, ref, rng):
    """soft_argmax is vectorized: at most 10x the time of a softmax-and-einsum yardstick"""
    train = student.module("train")
    shape = (2, 3, 64, 64)

    def make_args():
        return ((3.0 * rng.standard_normal(shape)).astype(np.float32),)

    ratio, t_fn, t_yard = _ratio(student, train.soft_argmax, "soft_argmax_yardstick",
                                 make_args, ref.soft_argmax, "train.soft_argmax")
    assert ratio < 10, (
        f"train.soft_argmax took {t_fn * 1e3:.1f} ms, {ratio:.1f}x the vectorized yardstick "
        f"({t_yard * 1e3:.2f} ms) on heatmaps of shape {shape}; the limit is 10x")
