"""Hidden: the speed of one training step relative to a yardstick on the same machine.

The yardstick (``train_step_yardstick`` in probes.py) is one SGD step of a network of the
size of ``SmallCNN()`` written with torch's built-in modules; it runs in a sibling worker
that never loads student code. Both sides are timed by the grader around the round trip,
every call on its own fresh batch passed by value (the inputs cannot be prepared before
the clock, results come back inside the timed window). The verdict is the ratio of the
minima after a warm-up, with a generous band.

Measured with one thread on batches of 128 (ratio of minima): the reference 0.9x, a
forward pass per sample (the mutant train_step_per_sample) 6.6x (limit 3x).
"""

import numpy as np
import pytest

pytestmark = [pytest.mark.visibility("after_published")]

LIMIT = 3.0


@pytest.mark.points(2)
@pytest.mark.tags("performance", "training")
@pytest.mark.call_timeout(30)
@pytest.mark.hint("Run the whole batch through the model at once; no Python loops over samples.")
def test_train_step_speed(student, rng):
    """train_step of SmallCNN(): at most 3x the time of the same step written with built-in modules"""
    models, train = student.module("models"), student.module("train")
    model = models.SmallCNN()
    opt = train.make_optimizer(model, "sgd", lr=0.01)
    shape, repeat = (128, 1, 8, 8), 7
    batches = [(rng.standard_normal(shape).astype(np.float32), rng.integers(0, 10, 128))
               for _ in range(repeat + 1)]

    def args(i):
        x, y = batches[i]
        return student.tensor(x), student.tensor(y)

    student.time_probe("train_step_yardstick", *args(0), repeat=0, warmup=2)
    t_yard = min(student.time_probe("train_step_yardstick", *args(i), repeat=1, warmup=0)[0]
                 for i in range(1, repeat + 1))
    student.time_call(train.train_step, model, opt, *args(0), repeat=0, warmup=2)
    timed = []
    t_fn = min(student.time_call(train.train_step, model, opt, *args(i), repeat=1, warmup=0,
                                 results=timed)[0] for i in range(1, repeat + 1))
    for out in timed:  # a timed call must also be a right one
        assert isinstance(out, (tuple, list)) and len(out) == 2 and np.isfinite(out[0]), (
            f"train_step returned {out!r} in a timed call, expected (loss, correct)")
    t_yard = min(t_yard, *(student.time_probe("train_step_yardstick", *args(i), repeat=1,
                                              warmup=0)[0] for i in range(1, repeat + 1)))
    ratio = t_fn / t_yard
    assert ratio < LIMIT, (
        f"train_step took {t_fn * 1e3:.1f} ms, {ratio:.1f}x the yardstick ({t_yard * 1e3:.2f} ms) "
        f"on a batch of shape {shape}; the limit is {LIMIT}x")
