"""Hidden: speed relative to a vectorized yardstick measured on the same machine.

Times are measured by the grader around each call; the verdict is the ratio of the
minima over several repeats after a warm-up, so machine speed cancels out. Every call
of the submission, the warm-up included, gets its own random input of the same shape
(the yardstick runs on the same inputs): caching results keyed on the input gains
nothing. Inputs travel with the timed call and results come back by value inside the
timed window, on both sides alike: the worker cannot start before the clock or return a
lazy result that computes only when it is converted. The bands are
generous: any vectorized implementation (im2col, one matrix product per kernel offset,
einsum over a strided view) lands within a few times the yardstick.

Measured with one thread (ratio of minima) on 32x3x16x16 inputs: reference conv
2.2-3.7x, im2col 3.4-4.1x, Python loops over images, filters and output pixels
290-510x, memoizing them or not (limit 20x). A loop over filters and output pixels,
vectorized over the batch, measured 22-31x there on a quiet machine (its verdict flipped
between runs) and passed at load 12, where the round trip of the yardstick's small
compute set its time: the README forbids such loops. With 4x3x32x32 inputs and 16
filters it is about 340x the yardstick's compute alone (the solution 1.2x); through the
round trip at load 12 on 2 cores (yardstick 3-9 ms instead of about 1 ms) it measured
31-42x, the slow variant (loops over images too) 110-156x, while a loop over output
pixels only (tensordot over batch, channels and filters) and the solution passed.
Reference max pool 1.0-1.2x, loops over images and channels only 2.6-3.8x, loops over
every output element 23-30x, memoizing them or not (limit 10x), on 32x8x16x16 inputs.
There the round trip to the worker could outweigh the yardstick's 1 ms of compute on a
loaded machine (a loop then passed under CI load); 32x8x32x32 with 2x2 windows of stride 2
still let the slow variant (solutions/a1_numpy_nn/variants/naive_loops) measure 14-15x
and once pass on a machine at load 12 on 2 cores. Overlapping windows (stride 1) on
16x8x32x32 give one output per input value, so the loop pays four times more per byte
that travels: 32x quiet, 19-25x at load 12 with a busy neighbour (same niceness).
Conv, the same variant (loops over images, filters and output pixels): 89-198x.
"""

import numpy as np
import pytest

pytestmark = [pytest.mark.visibility("after_published")]


def _ratio(student, fn, yardstick, reference, rng, x, rest, repeat=5):
    """Ratio of the minimum times of ``fn(x_i, *rest)`` and ``yardstick(x_i, *rest)``
    (a probe of A1's own, solutions/a1_numpy_nn/probes.py); ``reference`` is the grader's
    implementation the timed results are checked against.

    Every call gets its own random input of the shape of ``x`` (x itself is the untimed
    warm-up), so a submission that caches results keyed on the input gains nothing. Inputs
    travel with the call and results come back by value inside the timed window, on both
    sides: the worker cannot start before the clock, nor return a lazy result.
    """
    inputs = [rng.standard_normal(x.shape) for _ in range(repeat)]
    # The yardstick runs in a sibling worker that never loads student code, so a
    # submission cannot slow it down; both are timed here, around the round trip.
    student.time_probe(yardstick, x, *rest, repeat=0, warmup=1)
    t_yard = min(student.time_probe(yardstick, xi, *rest, repeat=1, warmup=0)[0]
                 for xi in inputs)
    student.time_call(fn, x, *rest, repeat=0, warmup=1)
    timed = []
    t_fn = min(student.time_call(fn, xi, *rest, repeat=1, warmup=0, results=timed)[0]
               for xi in inputs)
    # A timed call must also be a right one (no lazy or shape-guessing shortcuts): its
    # result is checked against the reference computed here, in the grader.
    for xi, out in zip(inputs, timed, strict=True):
        first = out[0] if isinstance(out, tuple) else out
        assert isinstance(first, np.ndarray), (
            f"{fn!r} returned {type(first).__name__} in a timed call, not an array")
        np.testing.assert_allclose(first, reference(xi, *rest), rtol=1e-6, atol=1e-8,
                                   err_msg=f"{fn!r} gave a wrong result in a timed call")
    # measure the yardstick again: a slow phase of the machine then hurts neither side
    t_yard = min(t_yard, *(student.time_probe(yardstick, xi, *rest, repeat=1, warmup=0)[0]
                           for xi in inputs))
    return t_fn / t_yard, t_fn, t_yard


@pytest.mark.points(3)
@pytest.mark.tags("performance", "conv")
@pytest.mark.call_timeout(30)
@pytest.mark.hint(
    "Loop over the kernel offsets only; do the batch, channels and output "
    "pixels with array operations (one matrix product per offset)."
)
def test_conv2d_forward_speed(student, rng, ref):
    """conv2d_forward is vectorized: at most 20x the time of an im2col/einsum yardstick"""
    layers = student.module("layers")
    # Few images, many output pixels: a loop over filters and pixels pays per pixel, while
    # the yardstick's compute stays small next to the round trip it shares with the call.
    x = rng.standard_normal((4, 3, 32, 32))
    w = rng.standard_normal((16, 3, 3, 3))
    b = rng.standard_normal(16)
    ratio, t_fn, t_yard = _ratio(
        student, layers.conv2d_forward, "conv2d_yardstick", ref.conv2d, rng, x, [w, b, 1, 1]
    )
    assert ratio < 20, (
        f"conv2d_forward took {t_fn * 1e3:.1f} ms, {ratio:.0f}x the vectorized yardstick "
        f"({t_yard * 1e3:.2f} ms) on x of shape {x.shape}; the limit is 20x"
    )


@pytest.mark.points(1)
@pytest.mark.tags("performance", "pool")
@pytest.mark.call_timeout(30)
@pytest.mark.hint(
    "Use a strided view or reshape over the pooling windows instead of loops "
    "over the output pixels."
)
def test_maxpool_forward_speed(student, rng, ref):
    """maxpool_forward is vectorized: at most 10x the time of a strided-view yardstick"""
    layers = student.module("layers")
    # Overlapping 2x2 windows (stride 1): about one output per input value, so a loop over
    # the outputs costs four times more per byte that the round trip carries than with
    # stride 2, where a loaded machine brought such a loop down to the limit (15x, then
    # under 10x: a flip).
    x = rng.standard_normal((16, 8, 32, 32))
    ratio, t_fn, t_yard = _ratio(
        student, layers.maxpool_forward, "maxpool_yardstick", ref.maxpool, rng, x, [2, 1]
    )
    assert ratio < 10, (
        f"maxpool_forward took {t_fn * 1e3:.1f} ms, {ratio:.0f}x the vectorized yardstick "
        f"({t_yard * 1e3:.2f} ms) on x of shape {x.shape}; the limit is 10x"
    )
