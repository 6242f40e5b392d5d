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
@pytest.mark.tags("parity", "unet")
@pytest.mark.parametrize("block,upsample", [("conv", "bilinear"), ("res", "transpose"),
                                            ("separable", "bilinear")])
def test_unet_forward_parity(student, block, upsample):
    """UNet forward (eval and train mode): the same on CPU and CUDA"""
    unet = student.module("unet")
    x = np.random.default_rng(0).standard_normal((2, 1, 21, 19)).astype(np.float32)

    def forward(device):
        model = _to(student, unet.UNet(1, 4, depth=3, width=4, upsample=upsample, block=block),
                    device)
        train_out = model(student.tensor(x, device=device))
        student.call(model.eval, want="none")
        return [train_out, model(student.tensor(x, device=device))]

    assert_device_parity(student, forward)


@pytest.mark.points(1)
@pytest.mark.tags("parity", "losses")
def test_losses_parity(student):
    """Losses, soft-argmax and their gradients: the same on CPU and CUDA (float64)"""
    losses, train = student.module("losses"), student.module("train")
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((2, 4, 9, 7))
    masks = rng.integers(0, 4, (2, 9, 7))
    e = np.exp(logits)
    probs = e / e.sum(axis=1, keepdims=True)
    target = (masks[:, None] == np.arange(4)[None, :, None, None]).astype(np.float64)
    marks = rng.uniform(0, 6, (2, 3, 2))

    def compute(device):
        def t(a):
            return student.tensor(a, device=device)

        return [
            losses.soft_dice(t(probs), t(target)),
            losses.dice_loss(t(logits), t(masks)),
            losses.focal_loss(t(logits), t(masks)),
            losses.seg_loss(t(logits), t(masks)),
            losses.my_loss(t(probs), t(target)),
            train.soft_argmax(t(logits[:, :3])),
            train.landmark_loss(t(logits[:, :3]), t(marks)),
            student.probe("input_grad", losses.seg_loss, t(logits), t(masks)),
            student.probe("input_grad", losses.my_loss, t(probs), t(target)),
        ]

    assert_device_parity(student, compute)


@pytest.mark.points(2)
@pytest.mark.tags("parity", "train")
@pytest.mark.call_timeout(60)
def test_train_and_predict_parity(student):
    """A few training steps and predict: the same losses and predictions on CPU and CUDA"""
    unet, train = student.module("unet"), student.module("train")
    rng = np.random.default_rng(2)
    images = rng.standard_normal((8, 1, 16, 16)).astype(np.float32)
    masks = rng.integers(0, 4, (8, 16, 16))
    marks = rng.uniform(0, 15, (8, 3, 2)).astype(np.float32)

    def run(device):
        model = _to(student, unet.SegLandmarkNet(1, 4, 3, depth=2, width=4), device)
        t = [student.tensor(a, device=device) for a in (images, masks, marks)]
        losses = train.train(model, *t, steps=3, batch_size=4, lr=1e-3, seed=0)
        seg, heat = model(t[0])
        return [np.asarray(losses, np.float32), seg, heat]

    # a few float32 steps through BatchNorm and Adam: the GPU sums in another order
    assert_device_parity(student, run, tolerances={"float32": (2e-3, 2e-4)})
