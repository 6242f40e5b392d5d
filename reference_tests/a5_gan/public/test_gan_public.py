"""Public tests for losses.py, models.py and train.py: known values on tiny inputs.

Run them with `autograder check a5`. The hidden tests add closed forms for many more
inputs (huge logits, critics with known gradients, finite differences of the penalty),
every configuration key, the training step against exact updates, the conditional GAN,
training on a mixture of Gaussians and on phantoms (scored by the graders), and speed.
"""

import math

import numpy as np
import pytest

pytestmark = [pytest.mark.visibility("visible")]


def _scalar(value, what):
    assert isinstance(value, np.ndarray) and value.shape == (), (
        f"{what} returned {type(value).__name__} {np.shape(value)}, expected a 0-d tensor")
    return float(value)


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "losses")
def test_losses_at_zero_logits(student):
    """At logits 0 (D undecided): discriminator_loss = 2 log 2, generator_loss = log 2"""
    losses = student.module("losses")
    zeros = np.zeros(4)
    d = _scalar(losses.discriminator_loss(student.tensor(zeros), student.tensor(zeros)),
                "losses.discriminator_loss")
    g = _scalar(losses.generator_loss(student.tensor(zeros)), "losses.generator_loss")
    assert d == pytest.approx(2 * math.log(2), rel=1e-6), f"discriminator_loss(0, 0) = {d}"
    assert g == pytest.approx(math.log(2), rel=1e-6), f"generator_loss(0) = {g}"


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "penalty")
@pytest.mark.hint("The norm of the whole gradient of each sample: grad.flatten(1).norm(dim=1).")
def test_penalty_of_a_linear_critic(student):
    """A linear critic w.x + b has gradient w everywhere: penalty = lam (||w|| - 1)^2"""
    losses = student.module("losses")
    w = np.full((1, 2, 2), 1.0)  # ||w|| = 2
    critic = student.probe("linear_critic", student.tensor(w, "float64"),
                           student.tensor(np.float64(0.0), "float64"))
    x = np.random.default_rng(0).standard_normal((3, 1, 2, 2))
    got = _scalar(losses.gradient_penalty(critic, student.tensor(x, "float64"),
                                          student.tensor(-x, "float64"), lam=10.0),
                  "losses.gradient_penalty")
    assert got == pytest.approx(10.0, rel=1e-6), f"gradient_penalty gave {got}, expected 10 * (2 - 1)^2 = 10"


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "models")
def test_model_shapes(student):
    """Generator: (N, 32) -> (N, 1, 32, 32) in [-1, 1]; Discriminator: -> (N,) logits"""
    models = student.module("models")
    G, D = models.Generator(), models.Discriminator()
    z = np.random.default_rng(1).standard_normal((3, 32)).astype(np.float32)
    images = G(student.tensor(z))
    assert isinstance(images, np.ndarray) and images.shape == (3, 1, 32, 32), (
        f"Generator returned {np.shape(images)}, expected (3, 1, 32, 32)")
    assert np.all(np.abs(images) <= 1), "Generator output outside [-1, 1]"
    scores = D(student.tensor(images))
    assert isinstance(scores, np.ndarray) and scores.shape == (3,), (
        f"Discriminator returned {np.shape(scores)}, expected (3,)")


@pytest.mark.points(1)
@pytest.mark.tags("convergence", "segment")
def test_segment_shapes(student):
    """segment: masks int64 (N, H, W) with classes 0..3, from the shipped segmenter"""
    train = student.module("train")
    net = student.probe("shipped_segmenter")
    x = np.random.default_rng(2).uniform(-1, 1, (2, 1, 32, 32)).astype(np.float32)
    masks = train.segment(net, student.tensor(x))
    assert isinstance(masks, np.ndarray) and masks.shape == (2, 32, 32) and masks.dtype == np.int64, (
        f"segment returned {type(masks).__name__} {getattr(masks, 'dtype', '')} {np.shape(masks)}, "
        "expected int64 (2, 32, 32)")
    assert masks.min() >= 0 and masks.max() <= 3
