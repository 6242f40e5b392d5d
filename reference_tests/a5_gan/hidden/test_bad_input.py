"""Hidden: bad input fails early and clearly, bad output is named.

Conditional models refuse missing labels, labels of another shape than (N,) and classes
out of range with the ValueError the docstrings promise (models.check_labels). A
discriminator must return logits: one whose scores stay within [0, 1] even with large
weights returns probabilities. A generator that returns nan or inf is named by the
grader's checks of returned values (conftest.finite, in test_models.py and the
convergence tests); a training loop that never returns by the harness's timeout message.
"""

import numpy as np
import pytest

pytestmark = [pytest.mark.visibility("after_published")]


def _z(seed, n, d):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


@pytest.mark.points(2)
@pytest.mark.tags("shapes", "bad_input")
@pytest.mark.parametrize("kind", ["Generator", "MLPGenerator", "Discriminator", "MLPDiscriminator"])
def test_conditional_models_reject_bad_labels(student, expect_value_error, kind):
    """Conditional models raise ValueError for missing labels, labels not (N,), classes out of range"""
    models = student.module("models")
    c, n = 3, 4
    if kind.endswith("Generator"):
        latent = 5
        model = getattr(models, kind)(latent_dim=latent, num_classes=c)
        x, what = _z(1, n, latent), f"models.{kind}(latent_dim={latent}, num_classes={c})"
    else:
        model = getattr(models, kind)(num_classes=c)
        x = (np.random.default_rng(2).uniform(-1, 1, (n, 1, 32, 32)).astype(np.float32)
             if kind == "Discriminator" else _z(2, n, 2))
        what = f"models.{kind}(num_classes={c})"
    student.call(model.eval, want="none")
    good = np.asarray(model(student.tensor(x), student.tensor(np.array([0, 2, 1, 2]))))
    assert good.shape[0] == n, f"{what} on a batch of {n} returned shape {good.shape}"
    cases = [
        ("without labels", None, "a conditional model needs labels (N,)"),
        ("with labels of shape (3,) for 4 samples", np.array([0, 1, 2]),
         "labels (N,): one class per sample"),
        ("with labels of shape (4, 1)", np.array([[0], [1], [2], [0]]),
         "labels (N,): one class per sample"),
        ("with the class 3 of classes 0..2", np.array([0, 3, 1, 2]), "classes 0..num_classes-1"),
        ("with the class -1", np.array([0, -1, 1, 2]), "classes 0..num_classes-1"),
    ]
    for label, labels, expected in cases:
        args = [student.tensor(x)] + ([] if labels is None else [student.tensor(labels)])
        expect_value_error(lambda args=args: model(*args), f"{what} {label}", expected)


@pytest.mark.points(1)
@pytest.mark.tags("shapes", "bad_input")
def test_mlp_discriminator_returns_logits(student, check_finite):
    """MLPDiscriminator returns logits, not probabilities (scores leave [0, 1] with large weights)"""
    models = student.module("models")
    D = models.MLPDiscriminator()
    student.probe("scale_parameters", D, 10.0)
    pts = 3 * _z(7, 256, 2)
    out = check_finite(D(student.tensor(pts)), "models.MLPDiscriminator with weights scaled by 10",
                       "logits")
    assert out.shape == (256,), f"models.MLPDiscriminator returned shape {out.shape}, expected (256,)"
    assert out.min() < 0 or out.max() > 1, (
        f"models.MLPDiscriminator with weights scaled by 10 returned values in [0, 1] only "
        f"({out.min():.3g}..{out.max():.3g}): probabilities where logits are expected? return "
        "the last layer's output without a sigmoid (the losses apply it)")
