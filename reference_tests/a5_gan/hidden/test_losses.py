"""Hidden: the non-saturating GAN losses against closed forms, also for huge logits.

Expected values are float64 closed forms computed here (conftest.Ref: a stable softplus).
"""

import numpy as np
import pytest

pytestmark = [pytest.mark.visibility("after_published")]


def _logits(rng, n, scale=3.0):
    return scale * rng.standard_normal(n)


@pytest.mark.points(2)
@pytest.mark.tags("gradients", "losses")
def test_discriminator_loss_closed_form(student, ref, rng):
    """discriminator_loss: mean softplus(-real) + mean softplus(fake), batches of other sizes"""
    losses = student.module("losses")
    real, fake = _logits(rng, 13), _logits(rng, 7)
    got = ref.scalar(losses.discriminator_loss(student.tensor(real), student.tensor(fake)),
                     "losses.discriminator_loss")
    expected = ref.d_loss(real, fake)
    assert got == pytest.approx(expected, rel=1e-9), (
        f"discriminator_loss gave {got:.8g}, expected {expected:.8g} = mean -log sigmoid(real) "
        "+ mean -log(1 - sigmoid(fake)) (real labelled 1, fake 0; each term a mean over its "
        "own batch)")


@pytest.mark.points(2)
@pytest.mark.tags("gradients", "losses")
def test_generator_loss_is_non_saturating(student, ref, rng):
    """generator_loss: mean -log sigmoid(fake), the non-saturating loss"""
    losses = student.module("losses")
    fake = _logits(rng, 11)
    got = ref.scalar(losses.generator_loss(student.tensor(fake)), "losses.generator_loss")
    expected = ref.g_loss(fake)
    assert got == pytest.approx(expected, rel=1e-9), (
        f"generator_loss gave {got:.8g}, expected {expected:.8g} = mean -log sigmoid(fake) "
        "(not the saturating mean log(1 - sigmoid(fake)))")


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "losses")
def test_losses_stable_for_huge_logits(student, ref):
    """Both losses are finite and exact for logits of +-1000 (no log(sigmoid) overflow)"""
    losses = student.module("losses")
    real = np.array([-1000.0, 1000.0, -30.0, 40.0])
    fake = np.array([1000.0, -1000.0, 35.0, -50.0])
    got_d = ref.scalar(losses.discriminator_loss(student.tensor(real), student.tensor(fake)),
                       "losses.discriminator_loss on logits of +-1000")
    got_g = ref.scalar(losses.generator_loss(student.tensor(fake)),
                       "losses.generator_loss on logits of +-1000")
    assert got_d == pytest.approx(ref.d_loss(real, fake), rel=1e-9), (
        f"discriminator_loss on logits of +-1000 gave {got_d}, expected {ref.d_loss(real, fake)}: "
        "use softplus (-log sigmoid(x) = softplus(-x)), not log(sigmoid(x))")
    assert got_g == pytest.approx(ref.g_loss(fake), rel=1e-9), (
        f"generator_loss on logits of +-1000 gave {got_g}, expected {ref.g_loss(fake)}")


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "losses")
def test_loss_gradients(student, ref, rng):
    """Autograd gradients of both losses match the closed forms (sigmoid terms)"""
    losses = student.module("losses")
    real, fake = _logits(rng, 6), _logits(rng, 5)
    g_real = student.probe("input_grad", losses.discriminator_loss, student.tensor(real),
                           student.tensor(fake))
    expected = -ref.sigmoid(-real) / len(real)
    assert g_real is not None, "discriminator_loss is not connected to the real logits"
    np.testing.assert_allclose(ref.array(g_real, "the gradient"), expected, rtol=1e-7, atol=1e-12,
                               err_msg="d discriminator_loss / d real_logits")
    g_fake = student.probe("input_grad", losses.generator_loss, student.tensor(fake))
    assert g_fake is not None, "generator_loss is not connected to the fake logits"
    np.testing.assert_allclose(ref.array(g_fake, "the gradient"), -ref.sigmoid(-fake) / len(fake),
                               rtol=1e-7, atol=1e-12, err_msg="d generator_loss / d fake_logits")


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "losses")
def test_losses_keep_dtype_and_inputs(student, rng):
    """Losses return a 0-d tensor of the input's dtype and leave their inputs unchanged"""
    losses = student.module("losses")
    real = rng.standard_normal(8).astype(np.float32)
    fake = rng.standard_normal(8).astype(np.float32)
    r, f = student.tensor(real), student.tensor(fake)
    r_h, f_h = student.put(r), student.put(f)
    out = losses.discriminator_loss(r_h, f_h)
    out_g = losses.generator_loss(f_h)
    for what, value in (("discriminator_loss", out), ("generator_loss", out_g)):
        assert isinstance(value, np.ndarray) and value.shape == () and value.dtype == np.float32, (
            f"losses.{what} on float32 logits returned {type(value).__name__} "
            f"{getattr(value, 'dtype', '')} {np.shape(value)}, expected a 0-d float32 tensor")
    np.testing.assert_array_equal(student.fetch(r_h), real, err_msg="real_logits were modified")
    np.testing.assert_array_equal(student.fetch(f_h), fake, err_msg="fake_logits were modified")
