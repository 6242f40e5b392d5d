"""Hidden: convergence, scored here from the samples the student's trained generator returns.

Training data is drawn here with hidden seeds and sent to the worker; the samples come back
as arrays. Mixture of Gaussians: six modes on a circle of radius 2 (std 0.1); the grader
counts the modes covered and the share of samples within 3 std of a mode. Phantoms: the
grader segments the generated images with its own copy of the shipped segmenter and counts
plausible myocardium rings (conftest.plausible_ring). Thresholds: bench/thresholds_a5.py
(reference over many seeds, bench/results/thresholds_a5.txt). This file's name sorts it
last: the slowest tests run after everything else.
"""

import numpy as np
import pytest

pytestmark = [pytest.mark.visibility("after_published")]

MOG = {"k": 6, "radius": 2.0, "std": 0.1, "n": 2048}
MOG_TRAIN = {"steps": 1000, "batch_size": 128, "lr": 2e-3}
MIN_COVERED, MIN_SHARE, MAX_MEDIAN = 5, 0.5, 0.3
COND_MIN_SHARE = 0.7
PHANTOM = {"n": 512, "noise": 0.01, "bias": 0.1}
PHANTOM_TRAIN = {"steps": 100, "batch_size": 32, "lr": 2e-3}  # per checkpoint
CHECKPOINTS = 3
N_GENERATED, MIN_RING_SHARE = 64, 2 / 64


def _mog(ref, seed):
    modes = ref.ring_modes(MOG["k"], MOG["radius"])
    pts, which = ref.mixture(MOG["n"], modes, MOG["std"], np.random.default_rng(seed))
    return modes, pts, which


def _samples(value, shape, what):
    assert isinstance(value, np.ndarray) and value.shape == shape, (
        f"{what} returned {type(value).__name__} {np.shape(value)}, expected {shape}")
    bad = int((~np.isfinite(value)).sum())
    assert not bad, (f"{what} returned nan or inf in {bad} of {value.size} values; expected "
                     "finite samples (did the training diverge? look at the losses)")
    return value.astype(np.float64)


@pytest.mark.points(4)
@pytest.mark.tags("convergence", "mixture")
# a few seconds per call on a quiet core; the margin is for graders under heavy load
@pytest.mark.call_timeout(240)
def test_mixture_of_gaussians(student, ref, leaderboard):
    """A GAN on a mixture of six Gaussians covers >= 5 modes with >= 50 % of samples near a mode

    MLPGenerator(latent_dim=2) and MLPDiscriminator, train_gan(steps=1000, batch_size=128,
    lr=2e-3, mode="ns") on 2048 points; 1024 samples scored here. Reference over 10 seeds:
    6 modes always, share 0.77-0.89, median distance 0.08-0.14 (hidden seeds: 6, 0.85, 0.08).
    """
    models, train = student.module("models"), student.module("train")
    modes, pts, _ = _mog(ref, 580_001)
    student.probe("deterministic_torch", 0)
    G, D = models.MLPGenerator(latent_dim=2), models.MLPDiscriminator()
    train.train_gan(G, D, student.tensor(pts), seed=0, **MOG_TRAIN)
    x = _samples(train.sample(G, 1024, seed=1), (1024, 2), "train.sample")
    covered, share, median = ref.mode_scores(x, modes, MOG["std"])
    leaderboard("mixture: share near a mode", share, order="desc")
    assert covered >= MIN_COVERED, f"the samples cover {covered} of the 6 modes (need {MIN_COVERED})"
    assert share >= MIN_SHARE, (
        f"{share:.1%} of the samples lie within 3 std of a mode (need {MIN_SHARE:.0%})")
    assert median <= MAX_MEDIAN, f"median distance to the nearest mode {median:.3f} (need <= {MAX_MEDIAN})"


@pytest.mark.points(3)
@pytest.mark.tags("convergence", "conditional")
@pytest.mark.call_timeout(240)
def test_conditional_mixture(student, ref):
    """A conditional GAN puts >= 70 % of each class's samples near that class's own modes

    Class = mode index mod 2 (three modes each); conditional MLPGenerator/MLPDiscriminator,
    the same training; 512 samples per class. Reference over 10 seeds: worst class
    0.88-0.97 (hidden seeds 0.83); a generator that ignores its class gets about 0.5.
    """
    models, train = student.module("models"), student.module("train")
    modes, pts, which = _mog(ref, 580_002)
    student.probe("deterministic_torch", 0)
    G, D = models.MLPGenerator(latent_dim=2, num_classes=2), models.MLPDiscriminator(num_classes=2)
    train.train_gan(G, D, student.tensor(pts), labels=student.tensor((which % 2).astype(np.int64)),
                    seed=0, **MOG_TRAIN)
    for c in range(2):
        x = _samples(train.sample(G, 512, seed=1 + c, labels=student.tensor(np.full(512, c, np.int64))),
                     (512, 2), "train.sample with labels")
        _, share, _ = ref.mode_scores(x, modes[c::2], MOG["std"])
        assert share >= COND_MIN_SHARE, (
            f"only {share:.1%} of the samples of class {c} lie within 3 std of the modes of "
            f"class {c} (need {COND_MIN_SHARE:.0%}): the generator does not follow its class")


@pytest.mark.points(3)
@pytest.mark.tags("convergence", "phantoms")
@pytest.mark.call_timeout(240)
def test_generated_phantoms_have_myocardium_rings(student, phantoms, grader_segmenter, ring_check,
                                                  leaderboard):
    """Generated phantoms: the grader's segmenter finds a myocardium ring around a blood pool in >= 2 of 64

    Generator/Discriminator trained on 512 phantoms of 32x32 (to_gan range) by
    CHECKPOINTS calls of train_gan(steps=100, batch_size=32, lr=2e-3, seed=k); after each
    call 64 samples are segmented here with the shipped network, and the best checkpoint
    counts. Short GAN training oscillates (a generator that drew rings at one checkpoint
    may draw blobs at the next, and a single end point had one seed in eight at 0 %): the
    best of a few checkpoints measures whether the GAN learned the anatomy at all.
    Reference (bench/results/thresholds_a5.txt): 0.91 with the hidden seeds; over 10 other
    seeds 0.125-0.83 (median 0.33), the worst seed 4x the bar (2 of 64, itself 5x the
    0.6 % of uniform-noise images).
    """
    models, train = student.module("models"), student.module("train")
    ph = phantoms.make_phantoms(PHANTOM["n"], 32, seed=580_003, noise=PHANTOM["noise"],
                                bias=PHANTOM["bias"])
    data = student.put(student.tensor(np.clip(ph.images / 0.65 - 1.0, -1.0, 1.0).astype(np.float32)))
    student.probe("deterministic_torch", 0)
    G, D = models.Generator(), models.Discriminator()
    shares = []
    for k in range(CHECKPOINTS):
        train.train_gan(G, D, data, seed=k, **PHANTOM_TRAIN)
        x = _samples(train.sample(G, N_GENERATED, seed=1), (N_GENERATED, 1, 32, 32), "train.sample")
        assert np.all(np.abs(x) <= 1.0), (
            f"train.sample returned images with values in {x.min():.3g}..{x.max():.3g}, expected "
            "[-1, 1] (the Generator ends with tanh)")
        masks = grader_segmenter(x.astype(np.float32))
        shares.append(float(np.mean([ring_check(m) for m in masks])))
    share = max(shares)
    leaderboard("phantoms: share with a myocardium ring", share, order="desc")
    assert share >= MIN_RING_SHARE, (
        f"at best {share:.1%} of {N_GENERATED} generated images show a myocardium ring around a "
        f"blood pool to the shipped segmenter (need {MIN_RING_SHARE:.1%}; after each of "
        f"{CHECKPOINTS} x {PHANTOM_TRAIN['steps']} steps: "
        + ", ".join(f"{v:.1%}" for v in shares) + ")")
