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


@pytest.mark.points(1)
@pytest.mark.tags("parity", "losses")
def test_losses_and_penalty_parity(student):
    """Losses and the gradient penalty (given eps): the same on CPU and CUDA (float64)"""
    losses = student.module("losses")
    rng = np.random.default_rng(1)
    real, fake = rng.standard_normal(9), rng.standard_normal(7)
    w = rng.standard_normal((1, 4, 4))
    xr, xf = rng.standard_normal((5, 1, 4, 4)), rng.standard_normal((5, 1, 4, 4))
    eps = rng.uniform(0, 1, 5)

    def compute(device):
        def t(a):
            return student.tensor(a, "float64", device=device)

        critic = _to(student, student.probe("linear_critic", t(w), t(np.float64(0.1))), device)
        return [losses.discriminator_loss(t(real), t(fake)), losses.generator_loss(t(fake)),
                losses.gradient_penalty(critic, t(xr), t(xf), eps=t(eps), lam=3.0),
                losses.critic_loss(critic, t(xr), t(xf), eps=t(eps))]

    assert_device_parity(student, compute)


@pytest.mark.points(1)
@pytest.mark.tags("parity", "models")
def test_models_parity(student):
    """Generator and Discriminator forward passes (eval mode): the same on CPU and CUDA"""
    models = student.module("models")
    rng = np.random.default_rng(2)
    z = rng.standard_normal((4, 32)).astype(np.float32)
    labels = np.array([0, 2, 1, 2])

    def forward(device):
        G = _to(student, models.Generator(num_classes=3), device)
        D = _to(student, models.Discriminator(num_classes=3), device)
        student.call(G.eval, want="none")
        y = student.tensor(labels, device=device)
        images = G(student.tensor(z, device=device), y)
        return [images, D(student.tensor(images, device=device), y)]

    assert_device_parity(student, forward)


@pytest.mark.points(1)
@pytest.mark.tags("parity", "train")
@pytest.mark.call_timeout(60)
def test_train_gan_parity(student):
    """A few steps of train_gan on points: the same losses on CPU and CUDA (CPU-seeded batches and z)"""
    models, train = student.module("models"), student.module("train")
    pts = np.random.default_rng(3).standard_normal((64, 2)).astype(np.float32)

    def run(device):
        G = _to(student, models.MLPGenerator(), device)
        D = _to(student, models.MLPDiscriminator(), device)
        history = train.train_gan(G, D, student.tensor(pts, device=device), steps=3,
                                  batch_size=16, lr=1e-3, seed=0)
        return np.asarray(history, np.float32)

    assert_device_parity(student, run, tolerances={"float32": (2e-3, 2e-4)})
