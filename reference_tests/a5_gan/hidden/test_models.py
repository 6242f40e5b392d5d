"""Hidden: the models' contracts (shapes for Hypothesis-drawn batch sizes and latent sizes,
output range, logits, class conditioning, no batch mixing in the discriminators).

The architectures are the student's choice: only the documented contract is checked.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = [pytest.mark.visibility("after_published")]

SHAPES = settings(derandomize=True, deadline=None, max_examples=6, database=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _z(seed, n, d):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def _images(seed, n):
    return np.random.default_rng(seed).uniform(-1, 1, (n, 1, 32, 32)).astype(np.float32)


def _eval(student, model):
    student.call(model.eval, want="none")


@pytest.mark.points(2)
@pytest.mark.tags("shapes", "models")
@SHAPES
@given(n=st.integers(1, 6), latent_dim=st.sampled_from([3, 16, 32, 50]))
def test_generator_shape_and_range(student, check_finite, n, latent_dim):
    """Generator(latent_dim): z (N, latent_dim) -> float32 images (N, 1, 32, 32) in [-1, 1]"""
    models = student.module("models")
    G = models.Generator(latent_dim=latent_dim)
    assert student.getattr(G, "latent_dim") == latent_dim, "Generator must keep self.latent_dim"
    _eval(student, G)
    out = G(student.tensor(_z(n, n, latent_dim)))
    assert isinstance(out, np.ndarray) and out.shape == (n, 1, 32, 32), (
        f"Generator(latent_dim={latent_dim}) on z of shape ({n}, {latent_dim}) returned "
        f"{type(out).__name__} {np.shape(out)}, expected (N, 1, 32, 32)")
    assert out.dtype == np.float32, f"Generator returned {out.dtype}, expected float32"
    check_finite(out, f"models.Generator(latent_dim={latent_dim})", "images in [-1, 1]")
    assert np.all(np.abs(out) <= 1.0), f"Generator output outside [-1, 1]: {out.min():.3g}..{out.max():.3g}"


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "models")
def test_generator_bounded_by_tanh(student, check_finite):
    """Generator output stays in [-1, 1] even with weights scaled up 30x (a final tanh)"""
    models = student.module("models")
    G = models.Generator()
    student.probe("scale_parameters", G, 30.0)
    for mode in ("train", "eval"):
        student.call(getattr(G, mode), want="none")
        out = check_finite(
            G(student.tensor(3 * _z(1, 8, 32))),
            f"models.Generator with its weights scaled by 30 ({mode} mode)",
            "images in [-1, 1]: a formula that overflows, such as (exp(2x) - 1) / (exp(2x) + 1)? "
            "torch.tanh is exact for every input")
        assert np.all(np.abs(out) <= 1.0), (
            f"with its weights scaled by 30 the Generator ({mode} mode) returned values in "
            f"{out.min():.3g}..{out.max():.3g}: end with tanh so images stay in [-1, 1]")


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "models")
def test_generator_uses_whole_latent(student):
    """Generator(latent_dim=7) uses every coordinate of z (eval mode, deterministic)"""
    models = student.module("models")
    G = models.Generator(latent_dim=7)
    _eval(student, G)
    z = _z(2, 4, 7)
    base = np.asarray(G(student.tensor(z)), np.float64)
    again = np.asarray(G(student.tensor(z)), np.float64)
    np.testing.assert_array_equal(base, again, err_msg="Generator in eval mode is not deterministic")
    for k in range(7):
        moved = z.copy()
        moved[:, k] += 1.5
        out = np.asarray(G(student.tensor(moved)), np.float64)
        assert np.abs(out - base).max() > 1e-4, f"the Generator ignores coordinate {k} of z"


@pytest.mark.points(2)
@pytest.mark.tags("shapes", "models")
@SHAPES
@given(n=st.integers(1, 9))
def test_discriminator_shape_and_logits(student, n):
    """Discriminator: images (N, 1, 32, 32) -> float32 logits (N,), not probabilities"""
    models = student.module("models")
    D = models.Discriminator()
    out = D(student.tensor(_images(n, n)))
    assert isinstance(out, np.ndarray) and out.shape == (n,), (
        f"Discriminator on {n} images returned {type(out).__name__} {np.shape(out)}, "
        f"expected logits of shape ({n},)")
    assert out.dtype == np.float32
    student.probe("scale_parameters", D, 10.0)
    big = np.asarray(D(student.tensor(_images(n + 100, 16))), np.float64)
    assert np.any(big < 0) or np.any(big > 1), (
        "with weights scaled by 10 the Discriminator's outputs all stay in [0, 1]: return "
        "logits (no sigmoid); the losses apply the sigmoid themselves")


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "models")
def test_discriminators_do_not_mix_samples(student):
    """Discriminators score each sample on its own in training mode (no BatchNorm)"""
    models = student.module("models")
    x = _images(3, 6)
    D = models.Discriminator()
    student.call(D.train, want="none")
    whole = np.asarray(D(student.tensor(x)), np.float64)
    alone = np.concatenate([np.asarray(D(student.tensor(x[i:i + 1])), np.float64) for i in range(3)])
    np.testing.assert_allclose(whole[:3], alone, rtol=1e-4, atol=1e-5, err_msg=(
        "Discriminator scores of a sample depend on the rest of the batch (BatchNorm?)"))
    pts = np.random.default_rng(4).standard_normal((6, 2)).astype(np.float32)
    M = models.MLPDiscriminator()
    student.call(M.train, want="none")
    whole = np.asarray(M(student.tensor(pts)), np.float64)
    alone = np.concatenate([np.asarray(M(student.tensor(pts[i:i + 1])), np.float64) for i in range(3)])
    np.testing.assert_allclose(whole[:3], alone, rtol=1e-4, atol=1e-5, err_msg=(
        "MLPDiscriminator scores of a sample depend on the rest of the batch"))


@pytest.mark.points(2)
@pytest.mark.tags("shapes", "models")
@SHAPES
@given(n=st.integers(1, 7), latent_dim=st.sampled_from([1, 2, 5]))
def test_mlp_models_shapes(student, n, latent_dim):
    """MLPGenerator(latent_dim): (N, latent_dim) -> points (N, 2); MLPDiscriminator: (N, 2) -> (N,)"""
    models = student.module("models")
    G = models.MLPGenerator(latent_dim=latent_dim)
    assert student.getattr(G, "latent_dim") == latent_dim, "MLPGenerator must keep self.latent_dim"
    out = G(student.tensor(_z(n, n, latent_dim)))
    assert isinstance(out, np.ndarray) and out.shape == (n, 2), (
        f"MLPGenerator(latent_dim={latent_dim}) returned {np.shape(out)}, expected ({n}, 2)")
    D = models.MLPDiscriminator()
    s = D(student.tensor(_z(n + 1, n, 2)))
    assert isinstance(s, np.ndarray) and s.shape == (n,), (
        f"MLPDiscriminator returned {np.shape(s)} for {n} points, expected ({n},)")


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "models")
def test_mlp_generator_unbounded(student):
    """MLPGenerator has no squashing output: scaled weights give points far outside [-1, 1]"""
    models = student.module("models")
    G = models.MLPGenerator(latent_dim=2)
    student.probe("scale_parameters", G, 5.0)
    out = np.asarray(G(student.tensor(3 * _z(5, 64, 2))), np.float64)
    assert np.abs(out).max() > 2.0, (
        f"MLPGenerator outputs stay within {np.abs(out).max():.3g} with weights scaled by 5: "
        "points live in the plane, no tanh or sigmoid at the end")


def _class_matrix(student, model, x, c, *, generator):
    """Outputs of ``model`` for every sample under every class: (C, ...)."""
    n = len(x)
    return np.stack([np.asarray(model(student.tensor(x), student.tensor(np.full(n, k, np.int64))),
                                np.float64) for k in range(c)])


@pytest.mark.points(2)
@pytest.mark.tags("shapes", "conditional")
@pytest.mark.parametrize("kind", ["Generator", "MLPGenerator"])
def test_conditional_generator_responds_to_class(student, kind):
    """Conditional generators: each class gives another output for the same z; mixed labels pick per sample"""
    models = student.module("models")
    c, latent = 4, 6
    G = getattr(models, kind)(latent_dim=latent, num_classes=c)
    assert student.getattr(G, "num_classes") == c, f"{kind} must keep self.num_classes"
    _eval(student, G)
    z = _z(6, 5, latent)
    outs = _class_matrix(student, G, z, c, generator=True)
    for a in range(c):
        for b in range(a + 1, c):
            assert np.abs(outs[a] - outs[b]).max(axis=tuple(range(1, outs.ndim - 1))).min() > 1e-4, (
                f"{kind}(num_classes={c}) gives the same output for classes {a} and {b}: append "
                "the one-hot class to z")
    labels = np.array([3, 0, 2, 1, 3])
    mixed = np.asarray(G(student.tensor(z), student.tensor(labels)), np.float64)
    np.testing.assert_allclose(mixed, outs[labels, np.arange(5)], rtol=1e-4, atol=1e-5, err_msg=(
        f"{kind}: sample i of a batch with mixed labels differs from the same z with "
        "labels[i] for the whole batch"))


@pytest.mark.points(2)
@pytest.mark.tags("shapes", "conditional")
@pytest.mark.parametrize("kind", ["Discriminator", "MLPDiscriminator"])
def test_conditional_discriminator_picks_class_score(student, kind):
    """Conditional discriminators: one score per sample, the score of its own class"""
    models = student.module("models")
    c = 3
    D = getattr(models, kind)(num_classes=c)
    assert student.getattr(D, "num_classes") == c, f"{kind} must keep self.num_classes"
    x = _images(7, 6) if kind == "Discriminator" else _z(7, 6, 2)
    scores = _class_matrix(student, D, x, c, generator=False)  # (C, N)
    assert scores.shape == (c, 6), f"{kind}(num_classes={c}) returned {scores.shape[1:]} per batch, expected (6,)"
    assert np.abs(scores[0] - scores[1]).max() > 1e-5 and np.abs(scores[1] - scores[2]).max() > 1e-5, (
        f"{kind}(num_classes={c}) gives the same scores whatever the labels")
    labels = np.array([2, 0, 1, 1, 0, 2])
    mixed = np.asarray(D(student.tensor(x), student.tensor(labels)), np.float64)
    np.testing.assert_allclose(mixed, scores[labels, np.arange(6)], rtol=1e-4, atol=1e-5, err_msg=(
        f"{kind}: with mixed labels sample i does not get the score of its class labels[i]"))
