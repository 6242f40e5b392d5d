"""Hidden: WGAN-GP's gradient penalty and critic loss.

Critics with closed-form gradients are built in the worker by A5's public probes: a linear
critic ``w . x + b`` (gradient ``w`` at every point, so the penalty is
``lam (||w|| - 1)^2`` whatever the interpolates) and a one-hidden-layer tanh critic whose
input gradient the grader computes itself at the interpolates it chose. Finite
differences of the penalty with respect to the critic's weights are computed here, calling
the student's function on perturbed weights.
"""

import numpy as np
import pytest

from autograder.testing import numerical_gradient, sample_coords

pytestmark = [pytest.mark.visibility("after_published")]


def _t(student, a):
    return student.tensor(np.asarray(a, np.float64), "float64")


@pytest.mark.points(2)
@pytest.mark.tags("gradients", "penalty")
@pytest.mark.parametrize("lam", [10.0, 3.7])
def test_penalty_linear_critic_images(student, ref, rng, lam):
    """gradient_penalty of a linear critic on images is lam (||w|| - 1)^2 (norm over C, H, W)"""
    losses = student.module("losses")
    shape = (6, 1, 5, 4)
    w = 0.3 * rng.standard_normal(shape[1:])
    critic = student.probe("linear_critic", _t(student, w), _t(student, 0.2))
    real, fake = rng.standard_normal(shape), rng.standard_normal(shape)
    got = ref.scalar(losses.gradient_penalty(critic, _t(student, real), _t(student, fake), lam=lam),
                     "losses.gradient_penalty")
    norm = float(np.linalg.norm(w))
    expected = lam * (norm - 1) ** 2
    assert got == pytest.approx(expected, rel=1e-7), (
        f"gradient_penalty(lam={lam}) of the linear critic w.x + b on images {shape} gave "
        f"{got:.6g}; its gradient is w everywhere, ||w|| = {norm:.4f} (the norm of the whole "
        f"gradient of a sample, over all of its C*H*W values), so the penalty is "
        f"lam * (||w|| - 1)^2 = {expected:.6g}")


@pytest.mark.points(2)
@pytest.mark.tags("gradients", "penalty")
def test_penalty_tanh_critic_closed_form(student, ref, rng):
    """gradient_penalty at s = eps real + (1 - eps) fake (given eps) matches a closed form"""
    losses = student.module("losses")
    n, d, hidden = 7, 6, 5
    w1, b1, w2 = rng.standard_normal((hidden, d)), rng.standard_normal(hidden), rng.standard_normal(hidden)
    real, fake = rng.standard_normal((n, d)), rng.standard_normal((n, d))
    eps = rng.uniform(0, 1, n)
    critic = student.probe("tanh_critic", _t(student, w1), _t(student, b1), _t(student, w2))
    got = ref.scalar(losses.gradient_penalty(critic, _t(student, real), _t(student, fake),
                                             lam=2.5, eps=_t(student, eps)),
                     "losses.gradient_penalty")
    expected = ref.gp_mlp(real, fake, eps, w1, b1, w2, 2.5)
    assert got == pytest.approx(expected, rel=1e-7), (
        f"gradient_penalty of a tanh critic at the interpolates eps_i real_i + (1 - eps_i) "
        f"fake_i (eps given) is {got:.8g}, expected {expected:.8g} = lam * mean_i "
        "(||grad critic(s_i)|| - 1)^2")


@pytest.mark.points(2)
@pytest.mark.tags("gradients", "penalty")
def test_penalty_finite_differences(student, ref, rng):
    """The penalty is differentiable in the critic's weights (create_graph): autograd vs central differences"""
    losses = student.module("losses")
    n, shape, hidden = 5, (1, 3, 3), 4
    d = int(np.prod(shape))
    w1 = rng.standard_normal((hidden, d))
    b1, w2 = rng.standard_normal(hidden), rng.standard_normal(hidden)
    real, fake = rng.standard_normal((n, *shape)), rng.standard_normal((n, *shape))
    eps = rng.uniform(0, 1, n)
    rest = (_t(student, real), _t(student, fake), _t(student, eps), 1.5)
    grad = student.probe("penalty_weight_grad", losses.gradient_penalty, _t(student, w1),
                         _t(student, b1), _t(student, w2), *rest)
    assert grad is not None, (
        "the gradient penalty is not connected to the critic's weights: compute the input "
        "gradient with torch.autograd.grad(..., create_graph=True), so the critic step can "
        "minimize the penalty")
    grad = ref.array(grad, "the gradient of the penalty")
    fn = student.probe_ref("penalty_of_weights")

    def f_batch(values):
        return student.map(fn, [(losses.gradient_penalty, _t(student, v), _t(student, b1),
                                 _t(student, w2), *rest) for v in values])

    coords = sample_coords(w1.shape, 12, rng)
    numeric = numerical_gradient(None, w1, None, coords=coords, f_batch=f_batch)
    num, ana = numeric[coords], grad[coords]
    scale = max(float(np.max(np.abs(num))), 1e-12)
    err = float(np.max(np.abs(num - ana))) / scale
    assert err < 1e-5, (
        f"autograd's gradient of the penalty with respect to the critic's weights differs from "
        f"central differences (relative error {err:.2e})")
    # and the value itself is the closed form
    value = ref.scalar(student.probe("penalty_of_weights", losses.gradient_penalty,
                                     _t(student, w1), _t(student, b1), _t(student, w2), *rest),
                       "losses.gradient_penalty")
    assert value == pytest.approx(ref.gp_mlp(real, fake, eps, w1, b1, w2, 1.5), rel=1e-7)


@pytest.mark.points(2)
@pytest.mark.tags("gradients", "penalty")
def test_penalty_draws_one_eps_per_sample(student, ref, rng):
    """eps=None: interpolates on each real-fake segment, one U(0, 1) draw per sample"""
    losses = student.module("losses")
    n, shape, hidden = 400, (1, 2, 2), 3
    d = int(np.prod(shape))
    w1, b1, w2 = rng.standard_normal((hidden, d)), rng.standard_normal(hidden), rng.standard_normal(hidden)
    real = rng.standard_normal((n, *shape)) + 3.0
    fake = rng.standard_normal((n, *shape)) - 3.0
    critic = student.probe("tanh_critic", _t(student, w1), _t(student, b1), _t(student, w2))
    got = ref.scalar(losses.gradient_penalty(critic, _t(student, real), _t(student, fake), lam=1.0),
                     "losses.gradient_penalty")
    inputs = student.probe("critic_inputs", critic)
    assert len(inputs) == 1, (
        f"gradient_penalty called the critic {len(inputs)} times; expected once, on the batch "
        "of interpolates")
    s = ref.array(inputs[0], "the critic's input").astype(np.float64)
    assert s.shape == real.shape, f"the critic got a batch of shape {s.shape}, expected {real.shape}"
    diff = (real - fake).reshape(n, -1)
    eps = ((s - fake).reshape(n, -1) * diff).sum(1) / (diff**2).sum(1)
    off = np.abs(ref.interpolate(real, fake, eps) - s).max()
    assert off < 1e-9, (
        "the critic's inputs are not points eps_i real_i + (1 - eps_i) fake_i of each sample's "
        f"segment (off by {off:.3g}): one eps per sample, broadcast over the sample's dimensions")
    assert eps.min() >= 0 and eps.max() <= 1, f"eps outside [0, 1]: {eps.min():.3f}..{eps.max():.3f}"
    assert eps.std() > 0.2, (
        f"the {n} samples' eps have a standard deviation of {eps.std():.3f}: draw one eps per "
        "sample (U(0, 1) has 0.289), not one for the whole batch")
    assert 0.4 < eps.mean() < 0.6 and abs(np.mean(eps < 0.5) - 0.5) < 0.1, (
        f"the eps of {n} samples have mean {eps.mean():.3f}: draw them from U(0, 1)")
    expected = ref.gp_mlp(real, fake, eps, w1, b1, w2, 1.0)
    assert got == pytest.approx(expected, rel=1e-6), (
        f"gradient_penalty gave {got:.6g}, but at the interpolates the critic got the penalty "
        f"is {expected:.6g}")


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "penalty")
def test_penalty_passes_labels(student, ref, rng):
    """gradient_penalty with labels calls critic(s, labels): the gradient of each sample's class"""
    losses = student.module("losses")
    n, c, d = 8, 3, 4
    w = rng.standard_normal((c, d)) * np.array([[0.2], [1.0], [2.5]])
    labels = rng.integers(0, c, n)
    critic = student.probe("linear_critic", _t(student, w), _t(student, np.zeros(c)), True)
    got = ref.scalar(losses.gradient_penalty(critic, _t(student, rng.standard_normal((n, d))),
                                             _t(student, rng.standard_normal((n, d))), lam=1.0,
                                             labels=student.tensor(labels)),
                     "losses.gradient_penalty with labels")
    norms = np.linalg.norm(w[labels], axis=1)
    expected = float(np.mean((norms - 1) ** 2))
    assert got == pytest.approx(expected, rel=1e-7), (
        f"gradient_penalty with labels gave {got:.6g}, expected {expected:.6g}: the critic is "
        "called as critic(s, labels) and the gradient of each sample's own score is penalized")


@pytest.mark.points(2)
@pytest.mark.tags("gradients", "penalty")
def test_critic_loss(student, ref, rng):
    """critic_loss = mean D(fake) - mean D(real) + gradient_penalty (lam passed on)"""
    losses = student.module("losses")
    n, d = 9, 5
    w = 0.4 * rng.standard_normal(d)
    critic = student.probe("linear_critic", _t(student, w), _t(student, 0.3))
    real, fake = rng.standard_normal((n, d)) + 1.0, rng.standard_normal((n, d))
    got = ref.scalar(losses.critic_loss(critic, _t(student, real), _t(student, fake), lam=4.0),
                     "losses.critic_loss")
    expected = float((fake @ w).mean() - (real @ w).mean() + 4.0 * (np.linalg.norm(w) - 1) ** 2)
    assert got == pytest.approx(expected, rel=1e-7), (
        f"critic_loss(lam=4) gave {got:.6g}, expected mean D(fake) - mean D(real) + "
        f"4 (||w|| - 1)^2 = {expected:.6g} for a linear critic")


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "penalty")
def test_critic_loss_passes_eps(student, ref, rng):
    """critic_loss passes eps on: a tanh critic's loss at the given interpolates"""
    losses = student.module("losses")
    n, d, hidden = 6, 4, 3
    w1, b1, w2 = rng.standard_normal((hidden, d)), rng.standard_normal(hidden), rng.standard_normal(hidden)
    real, fake = rng.standard_normal((n, d)), rng.standard_normal((n, d))
    eps = rng.uniform(0, 1, n)
    critic = student.probe("tanh_critic", _t(student, w1), _t(student, b1), _t(student, w2))
    got = ref.scalar(losses.critic_loss(critic, _t(student, real), _t(student, fake), lam=2.0,
                                        eps=_t(student, eps)), "losses.critic_loss")
    expected = float(ref.mlp_critic(fake, w1, b1, w2).mean() - ref.mlp_critic(real, w1, b1, w2).mean()
                     + ref.gp_mlp(real, fake, eps, w1, b1, w2, 2.0))
    assert got == pytest.approx(expected, rel=1e-7), (
        f"critic_loss(eps=...) gave {got:.8g}, expected {expected:.8g}: pass eps on to the penalty")


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "penalty")
def test_critic_loss_conditional_and_generator_loss(student, ref, rng):
    """critic_loss with labels scores every sample by its class; wgan_generator_loss = -mean"""
    losses = student.module("losses")
    n, c, d = 10, 2, 3
    w = rng.standard_normal((c, d))
    b = rng.standard_normal(c)
    labels = rng.integers(0, c, n)
    critic = student.probe("linear_critic", _t(student, w), _t(student, b), True)
    real, fake = rng.standard_normal((n, d)), rng.standard_normal((n, d))
    got = ref.scalar(losses.critic_loss(critic, _t(student, real), _t(student, fake), lam=0.5,
                                        labels=student.tensor(labels)),
                     "losses.critic_loss with labels")
    score = lambda x: (x * w[labels]).sum(1) + b[labels]  # noqa: E731
    expected = float(score(fake).mean() - score(real).mean()
                     + 0.5 * np.mean((np.linalg.norm(w[labels], axis=1) - 1) ** 2))
    assert got == pytest.approx(expected, rel=1e-7), (
        f"critic_loss with labels gave {got:.6g}, expected {expected:.6g}")
    scores = rng.standard_normal(12)
    g = ref.scalar(losses.wgan_generator_loss(_t(student, scores)), "losses.wgan_generator_loss")
    assert g == pytest.approx(-scores.mean(), rel=1e-9), (
        f"wgan_generator_loss gave {g:.6g}, expected -mean(scores) = {-scores.mean():.6g}")


@pytest.mark.points(1)
@pytest.mark.tags("gradients", "penalty")
def test_penalty_leaves_inputs(student, rng):
    """gradient_penalty and critic_loss leave real and fake unchanged"""
    losses = student.module("losses")
    real = rng.standard_normal((4, 1, 3, 3))
    fake = rng.standard_normal((4, 1, 3, 3))
    critic = student.probe("linear_critic", _t(student, rng.standard_normal((1, 3, 3))), _t(student, 0.0))
    r, f = student.put(_t(student, real)), student.put(_t(student, fake))
    losses.gradient_penalty(critic, r, f)
    losses.critic_loss(critic, r, f)
    np.testing.assert_array_equal(student.fetch(r), real, err_msg="real was modified")
    np.testing.assert_array_equal(student.fetch(f), fake, err_msg="fake was modified")
