"""Hidden: the same results on CPU and CUDA (run only where the worker has CUDA).

``assert_device_parity`` seeds the worker and turns TF32 off before each device's call,
builds the inputs with ``student.tensor(..., device=device)`` and compares the results in
the grader within the tolerance of their dtype. Where CUDA is missing these tests are
reported as not run and do not count.
"""

import numpy as np
import pytest

from autograder.testing import assert_device_parity

pytestmark = [pytest.mark.visibility("after_published"), pytest.mark.gpu]


def _to(student, module, device):
    return student.call(module.to, device, want="handle")


@pytest.mark.points(2)
@pytest.mark.tags("parity", "models")
@pytest.mark.parametrize("kind", ["lstm", "gru", "transformer"])
def test_forward_parity(student, kind):
    """Taggers with a padding mask (train and eval mode): the same on CPU and CUDA"""
    models = student.module("models")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 12, 4)).astype(np.float32)
    mask = np.arange(12)[None] < np.array([[12], [7], [3]])

    def forward(device):
        if kind == "transformer":
            model = models.TransformerTagger(4, d_model=8, nhead=2, num_layers=2,
                                             dim_feedforward=16, dropout=0.0, max_len=16)
        else:
            model = models.RNNTagger(4, 6, num_layers=2, cell=kind, bidirectional=True)
        model = _to(student, model, device)
        xs, ms = student.tensor(x, device=device), student.tensor(mask, device=device)
        out = np.asarray(model(xs, ms))
        student.probe("set_mode", model, False)
        return [np.where(mask, out, 0), np.where(mask, np.asarray(model(xs, ms)), 0)]

    assert_device_parity(student, forward)


@pytest.mark.points(1)
@pytest.mark.tags("parity", "loss")
def test_loss_and_train_parity(student):
    """bce_loss, its gradient and a few training steps: the same on CPU and CUDA"""
    models, train = student.module("models"), student.module("train")
    rng = np.random.default_rng(1)
    z = rng.standard_normal((3, 10))
    y = (rng.random((3, 10)) < 0.3).astype(np.float64)
    mask = np.arange(10)[None] < np.array([[10], [6], [2]])
    x = rng.standard_normal((6, 10, 4)).astype(np.float32)
    yy = (rng.random((6, 10)) < 0.2).astype(np.float32)

    def run(device):
        def t(a):
            return student.tensor(a, device=device)

        model = _to(student, models.RNNTagger(4, 5, cell="gru", bidirectional=True), device)
        losses = train.train(model, t(x), t(yy), steps=3, batch_size=3, lr=1e-2, pos_weight=2.0)
        return [train.bce_loss(t(z), t(y), t(mask), 3.0),
                student.probe("input_grad", train.bce_loss, t(z), t(y), t(mask)),
                np.asarray(losses, np.float32), train.predict_proba(model, t(x))]

    assert_device_parity(student, run, tolerances={"float32": (2e-3, 2e-4)})
