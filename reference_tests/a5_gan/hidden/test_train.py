"""Hidden: train_step, train_gan, sample and segment.

train_step and train_gan are checked on affine models built by A5's public probes
(generator ``z @ A.T + a``, discriminator ``x @ w + b``), whose updates the grader computes
in closed form: SGD for train_step, the first Adam step for train_gan (a generator with
A = 0 makes every fake sample the same, so the first losses are known exactly).
segment is compared with the grader's own copy of the shipped segmenter.
"""

import numpy as np
import pytest

from autograder.errors import StudentError

pytestmark = [pytest.mark.visibility("after_published")]


def _t(student, a):
    return student.tensor(np.asarray(a, np.float64), "float64")


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def _sp(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _step(A, a, w, b, real, z, lr_d, lr_g, mode, lam):
    """The documented step on affine models with SGD: returns new params and losses."""
    f = z @ A.T + a
    rs, fs = real @ w + b, f @ w + b
    if mode == "ns":
        d_loss = _sp(-rs).mean() + _sp(fs).mean()
        gr, gf = -_sig(-rs) / len(rs), _sig(fs) / len(fs)
        dw, db = real.T @ gr + f.T @ gf, gr.sum() + gf.sum()
    else:
        nw = np.linalg.norm(w)
        d_loss = fs.mean() - rs.mean() + lam * (nw - 1) ** 2
        dw, db = f.mean(0) - real.mean(0) + 2 * lam * (nw - 1) * w / nw, 0.0
    w2, b2 = w - lr_d * dw, b - lr_d * db
    s2 = f @ w2 + b2
    if mode == "ns":
        g_loss, gs = _sp(-s2).mean(), -_sig(-s2) / len(s2)
    else:
        g_loss, gs = -s2.mean(), -np.ones(len(s2)) / len(s2)
    df = gs[:, None] * w2[None, :]
    return A - lr_g * df.T @ z, a - lr_g * df.sum(0), w2, b2, d_loss, g_loss


def _affine_pair(student, rng, d=3, k=2, zero_g=False):
    A = np.zeros((d, k)) if zero_g else rng.standard_normal((d, k))
    a = rng.standard_normal(d)
    w, b = 0.5 * rng.standard_normal(d), np.array([0.1])
    G = student.probe("affine", _t(student, A), _t(student, a))
    D = student.probe("affine", _t(student, w[None, :]), _t(student, b), True)
    return G, D, (A, a, w, b[0])


def _params(student, G, D):
    g, d = student.probe("state_dict", G), student.probe("state_dict", D)
    return g["w"], g["b"], d["w"][0], float(d["b"][0])


@pytest.mark.points(3)
@pytest.mark.tags("convergence", "train_step")
@pytest.mark.parametrize("mode,lam", [("ns", 10.0), ("wgan-gp", 10.0), ("wgan-gp", 0.7)])
def test_train_step_updates(student, rng, mode, lam):
    """train_step: D step on detached fakes, then G step through the updated D (two steps, SGD)"""
    train = student.module("train")
    G, D, (A, a, w, b) = _affine_pair(student, rng)
    opt_g, opt_d = student.probe("sgd", G, 0.05), student.probe("sgd", D, 0.1)
    for step in range(2):
        real, z = rng.standard_normal((8, 3)) + 1.0, rng.standard_normal((8, 2))
        kw = {"mode": mode} if mode != "ns" else {}
        if lam != 10.0:
            kw["lam"] = lam
        out = train.train_step(G, D, opt_g, opt_d, _t(student, real), _t(student, z), **kw)
        A, a, w, b, d_loss, g_loss = _step(A, a, w, b, real, z, 0.1, 0.05, mode, lam)
        assert isinstance(out, tuple | list) and len(out) == 2 and all(
            isinstance(v, float) for v in out), (
            f"train_step returned {out!r}, expected (d_loss, g_loss) as Python floats")
        assert out[0] == pytest.approx(d_loss, rel=1e-6) and out[1] == pytest.approx(g_loss, rel=1e-6), (
            f"step {step + 1} ({mode}, lam={lam}): train_step returned losses {out}, expected "
            f"({d_loss:.6g}, {g_loss:.6g}) (the generator loss with the discriminator after its step)")
        gA, ga, gw, gb = _params(student, G, D)
        for name, got, exp in (("D weights", gw, w), ("D bias", gb, b), ("G weights", gA, A),
                               ("G bias", ga, a)):
            np.testing.assert_allclose(got, exp, rtol=1e-6, atol=1e-9, err_msg=(
                f"after step {step + 1} ({mode}, lam={lam}) the {name} differ from one SGD step "
                "of the discriminator on the documented loss followed by one of the generator "
                "(gradients zeroed before each backward; fakes detached in the D step)"))


@pytest.mark.points(1)
@pytest.mark.tags("convergence", "train_step")
def test_train_step_passes_labels(student, rng):
    """train_step with labels: the generator and every discriminator call get them"""
    train = student.module("train")
    G, D, _ = _affine_pair(student, rng)
    opt_g, opt_d = student.probe("sgd", G, 0.01), student.probe("sgd", D, 0.01)
    labels = np.array([2, 0, 1, 1, 0, 2])
    for mode in ("ns", "wgan-gp"):
        train.train_step(G, D, opt_g, opt_d, _t(student, rng.standard_normal((6, 3))),
                         _t(student, rng.standard_normal((6, 2))), labels=student.tensor(labels),
                         mode=mode)
    seen_g = student.probe("affine_record", G)["labels"]
    seen_d = student.probe("affine_record", D)["labels"]
    assert seen_g == [labels.tolist()] * 2, f"the generator got labels {seen_g}, expected {labels.tolist()} per step"
    assert len(seen_d) >= 6 and all(s == labels.tolist() for s in seen_d), (
        f"the discriminator got labels {seen_d[:4]}... on {len(seen_d)} calls; every call "
        "(real, fake, interpolates, generator step) needs the batch's labels")


@pytest.mark.points(1)
@pytest.mark.tags("convergence", "train_step")
def test_train_step_rejects_unknown_mode(student, rng):
    """train_step(mode="wgan") raises ValueError"""
    train = student.module("train")
    G, D, _ = _affine_pair(student, rng)
    opt_g, opt_d = student.probe("sgd", G, 0.01), student.probe("sgd", D, 0.01)
    with pytest.raises(StudentError) as info:
        train.train_step(G, D, opt_g, opt_d, _t(student, np.ones((2, 3))), _t(student, np.ones((2, 2))),
                         mode="wgan")
    assert info.value.type_name == "ValueError", (
        f"train_step(mode='wgan') raised {info.value.type_name}, expected ValueError")


@pytest.mark.points(1)
@pytest.mark.tags("convergence", "train_step")
def test_train_step_keeps_modes(student, rng):
    """train_step leaves the models' train/eval mode as it is"""
    train = student.module("train")
    G, D, _ = _affine_pair(student, rng)
    opt_g, opt_d = student.probe("sgd", G, 0.01), student.probe("sgd", D, 0.01)
    student.call(G.eval, want="none")
    train.train_step(G, D, opt_g, opt_d, _t(student, rng.standard_normal((4, 3))),
                     _t(student, rng.standard_normal((4, 2))))
    assert not student.probe("is_training", G) and student.probe("is_training", D), (
        "train_step changed the models' modes (G was in eval mode, D in training mode): "
        "leave them as they are; train_gan sets the modes")


def _constant_setup(student, rng, n=20):
    x0 = rng.standard_normal(3)
    data = np.tile(x0, (n, 1))
    G, D, (A, a, w, b) = _affine_pair(student, rng, zero_g=True)
    return G, D, data, x0, a, w, b


@pytest.mark.points(2)
@pytest.mark.tags("convergence", "train_gan")
@pytest.mark.parametrize("mode,lam", [("ns", 10.0), ("wgan-gp", 2.5)])
def test_train_gan_first_losses(student, rng, mode, lam):
    """train_gan: the first step's losses follow mode and lam (constant data, constant fakes)"""
    train = student.module("train")
    G, D, data, x0, a, w, b = _constant_setup(student, rng)
    history = train.train_gan(G, D, _t(student, data), steps=1, batch_size=5, lr=1e-3, mode=mode,
                              lam=lam, seed=1)
    assert isinstance(history, list | tuple) and len(history) == 1, (
        f"train_gan(steps=1) returned {history!r}, expected a list of one (d_loss, g_loss)")
    rs, fs = x0 @ w + b, a @ w + b
    expected = _sp(-rs) + _sp(fs) if mode == "ns" else fs - rs + lam * (np.linalg.norm(w) - 1) ** 2
    assert history[0][0] == pytest.approx(expected, rel=1e-6), (
        f"train_gan(mode={mode!r}, lam={lam}): first discriminator loss {history[0][0]:.6g}, "
        f"expected {expected:.6g}")


@pytest.mark.points(2)
@pytest.mark.tags("convergence", "train_gan")
@pytest.mark.parametrize("lr", [0.0, 0.01])
def test_train_gan_adam_lr(student, rng, lr):
    """train_gan: Adam with learning rate lr for both models (first step moves weights by ~lr)"""
    train = student.module("train")
    G, D, data, x0, a, w, b = _constant_setup(student, rng)
    A0 = np.zeros((3, 2))
    train.train_gan(G, D, _t(student, data), steps=1, batch_size=4, lr=lr, seed=0)
    gA, ga, gw, gb = _params(student, G, D)
    moved = np.concatenate([np.abs(gw - w), [abs(gb - b)], np.abs(ga - a).ravel(), np.abs(gA - A0).ravel()])
    if lr == 0.0:
        assert moved.max() == 0.0, "train_gan(lr=0) changed the weights: lr is not used"
    else:
        assert np.all(moved <= 1.001 * lr) and np.median(moved) == pytest.approx(lr, rel=0.01), (
            f"one step of train_gan(lr={lr}) moved the weights by {np.round(moved, 5)}; Adam's "
            "first step moves each weight by about lr")


@pytest.mark.points(1)
@pytest.mark.tags("convergence", "train_gan")
def test_train_gan_steps_batches_eval(student, rng):
    """train_gan: steps calls, batches of batch_size, training mode while training, eval mode after"""
    train = student.module("train")
    G, D, _ = _affine_pair(student, rng)
    student.call(G.eval, want="none")
    student.call(D.eval, want="none")
    data = rng.standard_normal((30, 3))
    history = train.train_gan(G, D, _t(student, data), steps=4, batch_size=7, lr=1e-3, seed=0)
    assert isinstance(history, list | tuple) and len(history) == 4, (
        f"train_gan(steps=4) returned {len(history) if isinstance(history, list | tuple) else history!r} entries")
    batches = student.probe("affine_record", G)["batches"]
    assert batches == [7] * 4, f"the generator got batches of {batches}, expected 7 per step"
    assert set(student.probe("affine_record", D)["batches"]) == {7}, "the discriminator got batches not of batch_size"
    modes = student.probe("affine_record", G)["training"] + student.probe("affine_record", D)["training"]
    assert all(modes), "train_gan ran the models in evaluation mode while training: call .train() first"
    assert not student.probe("is_training", G) and not student.probe("is_training", D), (
        "train_gan must leave both models in evaluation mode")


@pytest.mark.points(1)
@pytest.mark.tags("convergence", "train_gan")
def test_train_gan_seeded(student, rng):
    """train_gan: the same seed gives the same run, another seed another one"""
    train = student.module("train")
    data = rng.standard_normal((30, 3))
    runs = []
    for seed in (4, 4, 5):
        G, D, _ = _affine_pair(student, np.random.default_rng(5))
        runs.append(np.asarray(train.train_gan(G, D, _t(student, data), steps=3, batch_size=6,
                                               lr=1e-3, seed=seed), np.float64))
    np.testing.assert_array_equal(runs[0], runs[1], err_msg="two runs with seed=4 differ")
    assert not np.array_equal(runs[0], runs[2]), "seed=4 and seed=5 gave the same run"


@pytest.mark.points(1)
@pytest.mark.tags("convergence", "train_gan")
def test_train_gan_conditional(student, rng):
    """train_gan with labels: every step conditions G and D on the labels of its batch"""
    train = student.module("train")
    G, D, _ = _affine_pair(student, rng)
    n = 24
    data = np.zeros((n, 3))
    labels = np.arange(n) % 3
    train.train_gan(G, D, _t(student, data), labels=student.tensor(labels), steps=3,
                    batch_size=5, lr=1e-3, seed=2)
    seen = student.probe("affine_record", G)["labels"]
    assert len(seen) == 3 and all(len(s) == 5 and set(s) <= {0, 1, 2} for s in seen), (
        f"train_gan(labels=...) gave the generator labels {seen}, expected 5 per step")
    assert any(len(set(s)) > 1 for s in seen), "the labels of every batch are all equal: take labels[idx]"


# ---------------------------------------------------------------- sample and segment


@pytest.mark.points(2)
@pytest.mark.tags("convergence", "sample")
def test_sample(student):
    """sample: G(z) for z = randn(n, latent_dim) from seed, eval mode, no graph; labels passed"""
    models, train = student.module("models"), student.module("train")
    student.probe("deterministic_torch", 0)
    G = models.Generator(latent_dim=5, num_classes=2)
    student.call(G.train, want="none")
    labels = np.array([0, 1, 1, 0, 1, 0])
    result = student.call(train.sample, G, 6, seed=3, labels=student.tensor(labels), want="handle")
    assert student.probe("requires_grad", result) is False, (
        "sample returned a tensor attached to an autograd graph: use torch.no_grad()")
    got = student.fetch(result)
    assert isinstance(got, np.ndarray) and got.shape == (6, 1, 32, 32), f"sample returned {np.shape(got)}"
    z = student.probe("latent", 6, 5, 3)
    student.call(G.eval, want="none")
    expected = G(student.tensor(z), student.tensor(labels))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, err_msg=(
        "sample(G, 6, seed=3, labels) differs from G(z, labels) in evaluation mode with "
        "z = torch.randn(6, latent_dim, generator=torch.Generator().manual_seed(3))"))


@pytest.mark.points(3)
@pytest.mark.tags("convergence", "segment")
def test_segment_matches_graders_segmenter(student, phantoms, grader_segmenter):
    """segment: from_gan, eval mode, argmax over the classes: the grader's masks, input unchanged"""
    train = student.module("train")
    ph = phantoms.make_phantoms(16, 32, seed=77_001)
    x = np.clip(ph.images / 0.65 - 1.0, -1, 1).astype(np.float32)
    net = student.probe("shipped_segmenter")
    student.call(net.train, want="none")  # segment must switch to evaluation mode itself
    handle = student.put(student.tensor(x))
    masks = train.segment(net, handle)
    assert isinstance(masks, np.ndarray) and masks.shape == (16, 32, 32) and masks.dtype == np.int64, (
        f"segment returned {type(masks).__name__} {getattr(masks, 'dtype', '')} {np.shape(masks)}, "
        "expected int64 masks (N, H, W)")
    expected = grader_segmenter(x)
    wrong = float(np.mean(masks != expected))
    assert wrong < 1e-3, (
        f"segment's masks differ from the shipped segmenter's in {wrong:.1%} of the pixels "
        "(convert with from_gan, model.eval(), argmax over the class axis)")
    np.testing.assert_array_equal(student.fetch(handle), x, err_msg="segment modified its input")
