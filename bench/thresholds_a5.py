"""Convergence thresholds of A5's hidden suite, measured on the reference solution.

Instructor tooling (grader side): imports the reference solution, the official phantom
generator, the shipped segmenter and the grader's scoring (reference_tests/a5_gan/
conftest.py) directly, and repeats the setups of
``reference_tests/a5_gan/hidden/test_zconvergence.py`` over many seeds (one thread). Each
seed changes the training data, the initial weights, the batches and the latent codes.
Prints each run, min / median / max of every score, the same figures for the hidden seeds,
and the thresholds the suite uses, with the chance level of random images for the rings.

    .venv/bin/python bench/thresholds_a5.py [--seeds 10] [--phantom-seeds 10] [--skip-speed] [--skip-mixture] > bench/results/thresholds_a5.txt
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "solutions" / "a5_gan"))

import models  # noqa: E402
import phantoms  # noqa: E402
from segmenter import load_segmenter  # noqa: E402
from train import sample, train_gan  # noqa: E402


def _load(path: Path, name: str):  # noqa: ANN202
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


conftest = _load(ROOT / "reference_tests" / "a5_gan" / "conftest.py", "_a5_conftest")
suite = _load(ROOT / "reference_tests" / "a5_gan" / "hidden" / "test_zconvergence.py", "_a5_conv")
Ref = conftest.Ref
SEG = load_segmenter()


def segment(x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return SEG((torch.as_tensor(x) + 1.0) * 0.65).argmax(dim=1).numpy()


def mog(data_seed: int, init_seed: int, batch_seed: int, conditional: bool) -> tuple[float, ...]:
    modes = Ref.ring_modes(suite.MOG["k"], suite.MOG["radius"])
    pts, which = Ref.mixture(suite.MOG["n"], modes, suite.MOG["std"], np.random.default_rng(data_seed))
    torch.manual_seed(init_seed)
    c = 2 if conditional else 0
    G, D = models.MLPGenerator(latent_dim=2, num_classes=c), models.MLPDiscriminator(num_classes=c)
    labels = torch.tensor(which % 2) if conditional else None
    train_gan(G, D, torch.tensor(pts), labels=labels, seed=batch_seed, **suite.MOG_TRAIN)
    if not conditional:
        return Ref.mode_scores(sample(G, 1024, seed=batch_seed + 1).numpy(), modes, suite.MOG["std"])
    shares = []
    for k in range(2):
        x = sample(G, 512, seed=batch_seed + 1 + k, labels=torch.full((512,), k)).numpy()
        shares.append(Ref.mode_scores(x, modes[k::2], suite.MOG["std"])[1])
    return (min(shares),)


def rings(data_seed: int, init_seed: int, batch_seed: int) -> tuple[float, list[float], float]:
    """The phantom test's run: CHECKPOINTS calls of train_gan (batch seeds ``batch_seed + k``),
    the ring share of N_GENERATED samples after each; returns (best share, shares, seconds)."""
    p = suite.PHANTOM
    ph = phantoms.make_phantoms(p["n"], 32, seed=data_seed, noise=p["noise"], bias=p["bias"])
    data = torch.clamp(torch.tensor(ph.images) / 0.65 - 1.0, -1.0, 1.0)
    torch.manual_seed(init_seed)
    G, D = models.Generator(), models.Discriminator()
    shares, start = [], time.perf_counter()
    for k in range(suite.CHECKPOINTS):
        train_gan(G, D, data, seed=batch_seed + k, **suite.PHANTOM_TRAIN)
        x = sample(G, suite.N_GENERATED, seed=1).numpy()
        shares.append(float(np.mean([conftest.plausible_ring(m) for m in segment(x)])))
    return max(shares), shares, time.perf_counter() - start


def speed(repeat: int = 5) -> None:
    """In-process ratios of the performance test's calls (no sandbox, no transfers): the
    reference train_step(mode="wgan-gp") and one whose penalty loops over the samples,
    against the yardstick, on the yardstick's MLP models and batches of 512 points."""
    import losses
    import train as train_module

    probes = _load(ROOT / "solutions" / "a5_gan" / "probes.py", "_a5_probes")

    def loop_penalty(critic, real, fake, *, lam=10.0, eps=None, labels=None):  # noqa: ANN001, ANN202
        n = real.shape[0]
        eps = torch.rand(n) if eps is None else eps
        terms = []
        for i in range(n):
            s = (eps[i] * real[i:i + 1] + (1 - eps[i]) * fake[i:i + 1]).detach().requires_grad_(True)
            (g,) = torch.autograd.grad(critic(s).sum(), s, create_graph=True)
            terms.append((g.norm() - 1) ** 2)
        return lam * torch.stack(terms).mean()

    rng = np.random.default_rng(0)

    def batch() -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.tensor(rng.standard_normal((512, 2)).astype(np.float32)),
                torch.tensor(rng.standard_normal((512, 2)).astype(np.float32)))

    def best(fn) -> float:  # noqa: ANN001
        fn(*batch())
        times = []
        for _ in range(repeat):
            args = batch()
            start = time.perf_counter()
            fn(*args)
            times.append(time.perf_counter() - start)
        return min(times)

    t_yard = best(probes.wgan_step_yardstick)
    models_ref = probes.fixed_models()
    t_ref = best(lambda r, z: train_module.train_step(*models_ref, r, z, mode="wgan-gp"))
    original = losses.gradient_penalty
    train_module.critic_loss.__globals__["gradient_penalty"] = loop_penalty
    try:
        models_loop = probes.fixed_models()
        t_loop = best(lambda r, z: train_module.train_step(*models_loop, r, z, mode="wgan-gp"))
    finally:
        train_module.critic_loss.__globals__["gradient_penalty"] = original
    print(f"speed (in-process, min of {repeat}): yardstick {t_yard * 1e3:.1f} ms, reference "
          f"train_step {t_ref * 1e3:.1f} ms ({t_ref / t_yard:.2f}x), per-sample penalty loop "
          f"{t_loop * 1e3:.1f} ms ({t_loop / t_yard:.2f}x); limit 4x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--phantom-seeds", type=int, default=10)
    parser.add_argument("--speed-only", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-mixture", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread")
    if not args.skip_speed:
        speed()
    if args.speed_only:
        return
    if not args.skip_mixture:
        mixture(args.seeds)
    phantom_rings(args.phantom_seeds)


def mixture(seeds: int) -> None:
    print(f"mixture {suite.MOG}, training {suite.MOG_TRAIN}")
    cov, share, med, cond = [], [], [], []
    for s in range(seeds):
        c, sh, m = mog(1000 + s, s, s, False)
        (cs,) = mog(2000 + s, s, s, True)
        cov.append(c), share.append(sh), med.append(m), cond.append(cs)
        print(f"seed {s:2d}: modes covered {c}  share near a mode {sh:.3f}  median distance "
              f"{m:.3f}  conditional: worst class share {cs:.3f}", flush=True)
    c, sh, m = mog(580_001, 0, 0, False)
    (cs,) = mog(580_002, 0, 0, True)
    print(f"hidden seeds: modes covered {c}  share {sh:.3f}  median distance {m:.3f}  "
          f"conditional worst class share {cs:.3f}")
    for name, v in (("modes covered", cov), ("share near a mode", share),
                    ("median distance", med), ("conditional share", cond)):
        v = np.asarray(v, float)
        print(f"{name} over {len(v)} seeds: min {v.min():.3f}  median {np.median(v):.3f}  max {v.max():.3f}")
    print(f"thresholds: covered >= {suite.MIN_COVERED}, share >= {suite.MIN_SHARE}, median "
          f"distance <= {suite.MAX_MEDIAN}, conditional share >= {suite.COND_MIN_SHARE}")


def phantom_rings(seeds: int) -> None:
    print(f"phantoms {suite.PHANTOM}, {suite.CHECKPOINTS} checkpoints of training "
          f"{suite.PHANTOM_TRAIN}, {suite.N_GENERATED} samples at each, the best counts")
    noise = np.random.default_rng(0).uniform(-1, 1, (512, 1, 32, 32)).astype(np.float32)
    chance = float(np.mean([conftest.plausible_ring(m) for m in segment(noise)]))
    real = phantoms.make_phantoms(512, 32, seed=3, noise=0.01, bias=0.1).images
    real_share = float(np.mean([conftest.plausible_ring(m) for m in
                                segment(np.clip(real / 0.65 - 1, -1, 1).astype(np.float32))]))
    print(f"ring share of real phantoms {real_share:.3f}, of uniform noise images {chance:.4f}")
    ring = []
    for s in range(seeds):
        r, shares, seconds = rings(3000 + s, s, 100 * s)
        ring.append(r)
        print(f"seed {s:2d}: best ring share {r:.3f}  (checkpoints {' '.join(f'{v:.3f}' for v in shares)}; "
              f"training {seconds:.0f} s)", flush=True)
    r, shares, seconds = rings(580_003, 0, 0)
    print(f"hidden seeds: best ring share {r:.3f} (checkpoints {' '.join(f'{v:.3f}' for v in shares)}; "
          f"training {seconds:.0f} s)")
    v = np.asarray(ring)
    print(f"best ring share over {len(v)} seeds: min {v.min():.3f}  median {np.median(v):.3f}  "
          f"max {v.max():.3f}  (mean {v.mean():.3f}, std {v.std():.3f})")
    passed = int((v >= suite.MIN_RING_SHARE).sum())
    print(f"threshold: ring share >= {suite.MIN_RING_SHARE:.4f} ({passed} of {len(v)} seeds reach it; "
          f"the worst seed is {v.min() / suite.MIN_RING_SHARE:.1f}x the threshold, which is "
          f"{suite.MIN_RING_SHARE / max(chance, 1 / 512):.0f}x chance)")


if __name__ == "__main__":
    main()
