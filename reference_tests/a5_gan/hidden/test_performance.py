"""Hidden: speed of a WGAN-GP training step relative to a vectorized yardstick.

Both time one critic step and one generator step of the same small MLP pair (built by the
public probe ``fixed_models``: only the step itself is compared), on batches of 512 points
in the plane (small models, so the cost of the step's own code shows). The yardstick (solutions/a5_gan/probes.py) runs in a worker that never loads
student code and takes the penalty's gradient with one autograd.grad for the whole batch.
Times are measured by the grader around each round trip, minima over several repeats with
fresh inputs, as a ratio. Measured with one thread (bench/results/thresholds_a5.txt):
in-process, reference 1.3x, a penalty looping over the samples (one autograd.grad each)
about 20x; the limit is 4x.
"""

import numpy as np
import pytest

pytestmark = [pytest.mark.visibility("after_published")]

REPEAT = 4
LIMIT = 4.0


@pytest.mark.points(2)
@pytest.mark.tags("performance", "train_step")
@pytest.mark.call_timeout(60)
@pytest.mark.hint("One torch.autograd.grad call for the whole batch of interpolates; no "
                  "Python loop over the samples.")
def test_wgan_step_speed(student, rng):
    """train_step(mode="wgan-gp") is vectorized: at most 4x a one-autograd.grad yardstick"""
    train = student.module("train")
    G, D, opt_g, opt_d = student.probe("fixed_models")

    def make():
        real = rng.standard_normal((512, 2)).astype(np.float32)
        z = rng.standard_normal((512, 2)).astype(np.float32)
        return student.tensor(real), student.tensor(z)

    inputs = [make() for _ in range(REPEAT)]
    warm = make()
    student.time_probe("wgan_step_yardstick", *warm, repeat=0, warmup=1)
    student.time_call(train.train_step, G, D, opt_g, opt_d, *warm, mode="wgan-gp", repeat=0, warmup=1)
    t_yard = min(student.time_probe("wgan_step_yardstick", *a, repeat=1, warmup=0)[0] for a in inputs)
    timed = []
    t_fn = min(student.time_call(train.train_step, G, D, opt_g, opt_d, *a, mode="wgan-gp",
                                 repeat=1, warmup=0, results=timed)[0] for a in inputs)
    for out in timed:
        assert isinstance(out, tuple | list) and len(out) == 2 and all(
            isinstance(v, float) and np.isfinite(v) for v in out), (
            f"train_step returned {out!r} in a timed call, expected two finite floats")
    t_yard = min(t_yard, *(student.time_probe("wgan_step_yardstick", *a, repeat=1, warmup=0)[0]
                           for a in inputs))
    ratio = t_fn / t_yard
    assert ratio < LIMIT, (
        f"train_step(mode='wgan-gp') took {t_fn * 1e3:.1f} ms, {ratio:.1f}x the vectorized "
        f"yardstick ({t_yard * 1e3:.1f} ms) on 512 points; the limit is {LIMIT}x")
