"""Hidden: the latency of predict with the exported model, relative to the eager model.

The yardstick (``eager_predict_yardstick`` in probes.py) is the softmax of an eager torch
network of the size of ``SmallCNN()`` on the same uint8 batch; it runs in a sibling worker
that never loads student code. Both sides are timed by the grader around the round trip,
every call on its own fresh batch passed by value. The verdict is the ratio of the minima
after a warm-up, with a generous band.

Measured with one thread on batches of 256 (ratio of minima, 2-core machine): the reference
with ONNX 0.3-0.5x; a loop over the images (the slow variant predict_per_image) 10-20x; a
model that is loaded again at every call (the mutant load_model_per_call) 6-10x.
"""

import numpy as np
import pytest

pytestmark = [pytest.mark.visibility("after_published")]

LIMIT = 3.0


@pytest.mark.points(2)
@pytest.mark.tags("performance")
@pytest.mark.call_timeout(60)
@pytest.mark.hint("Load the model once in load_model and run the whole batch in one call; no "
                  "Python loops over images.")
def test_predict_latency(student, reference, a7):
    """predict on a batch of 256 images with the ONNX export: at most 3x the eager model's time"""
    predict = student.module("predict")
    path = student.probe("scratch_path", "model.onnx")
    student.probe("reference_export", "onnx", path)
    model = predict.load_model(path)
    rng = np.random.default_rng(4242)
    repeat = 7
    pool, _ = a7.hidden_digits(256, seed=41)
    batches = [pool[rng.permutation(256)] for _ in range(repeat + 1)]
    student.time_probe("eager_predict_yardstick", batches[0], repeat=0, warmup=2)
    t_yard = min(student.time_probe("eager_predict_yardstick", batches[i], repeat=1, warmup=0)[0]
                 for i in range(1, repeat + 1))
    student.time_call(predict.predict, model, batches[0], repeat=0, warmup=2)
    timed = []
    t_fn = min(student.time_call(predict.predict, model, batches[i], repeat=1, warmup=0,
                                 results=timed)[0] for i in range(1, repeat + 1))
    for i, out in enumerate(timed, start=1):  # a timed call must also be a right one
        want = reference.probs_uint8(batches[i])
        assert isinstance(out, np.ndarray) and out.shape == want.shape, (
            f"predict returned {getattr(out, 'shape', type(out).__name__)} in a timed call, "
            f"expected {want.shape}")
        assert np.max(np.abs(out - want)) < 1e-4, "predict returned wrong probabilities in a timed call"
    t_yard = min(t_yard, *(student.time_probe("eager_predict_yardstick", batches[i], repeat=1,
                                              warmup=0)[0] for i in range(1, repeat + 1)))
    ratio = t_fn / t_yard
    assert ratio < LIMIT, (
        f"predict took {t_fn * 1e3:.1f} ms, {ratio:.1f}x the eager model ({t_yard * 1e3:.2f} ms) "
        f"on a batch of 256 images; the limit is {LIMIT}x")
