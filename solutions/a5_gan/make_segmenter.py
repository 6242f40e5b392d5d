"""Train the segmenter shipped with Assignment 5 and write ``segmenter.safetensors``.

Instructor tooling (not shipped to students): Assignment 3's reference U-Net
(``segmenter.UNet(1, 4, depth=2, width=8)``, a copy of A3's solution code) trained on
32x32 phantoms of ``phantoms.py`` with fixed seeds, Adam and the cross-entropy plus
soft Dice loss of A3. The images are augmented with extra noise, blur and intensity
changes so that the network also segments the rougher images a small GAN makes. Prints the
foreground Dice on held-out phantoms and the file's size.

    .venv/bin/python solutions/a5_gan/make_segmenter.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import phantoms  # noqa: E402
from segmenter import CONFIG, WEIGHTS, UNet  # noqa: E402

SIZE, STEPS, BATCH, LR, SEED = 32, 600, 32, 1e-2, 5


def augment(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random contrast and brightness, extra Gaussian noise, and a light blur on half."""
    n = len(images)
    x = images * rng.uniform(0.8, 1.2, (n, 1, 1, 1)) + rng.uniform(-0.1, 0.1, (n, 1, 1, 1))
    x = x + rng.standard_normal(x.shape) * rng.uniform(0.0, 0.08, (n, 1, 1, 1))
    blur = rng.random(n) < 0.5
    if blur.any():
        k = np.array([0.25, 0.5, 0.25])
        b = x[blur]
        b = np.apply_along_axis(lambda v: np.convolve(v, k, mode="same"), 2, b)
        b = np.apply_along_axis(lambda v: np.convolve(v, k, mode="same"), 3, b)
        x[blur] = b
    return np.clip(x, 0.0, 1.3).astype(np.float32)


def loss_fn(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    probs = torch.softmax(logits, dim=1)
    target = F.one_hot(masks, 4).permute(0, 3, 1, 2).to(probs.dtype)
    inter = (probs * target).sum(dim=(2, 3))
    dice = (2 * inter + 1e-6) / (probs.sum(dim=(2, 3)) + target.sum(dim=(2, 3)) + 1e-6)
    return 0.5 * F.cross_entropy(logits, masks) + 0.5 * (1 - dice[:, 1:].mean())


def main() -> None:
    from safetensors.torch import save_file

    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    train = phantoms.make_phantoms(2048, SIZE, seed=SEED)
    test = phantoms.make_phantoms(256, SIZE, seed=SEED + 1)
    net = UNet(**CONFIG)
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=STEPS)
    start = time.perf_counter()
    net.train()
    for step in range(STEPS):
        idx = rng.integers(0, len(train), BATCH)
        x = torch.tensor(augment(train.images[idx], rng))
        loss = loss_fn(net(x), torch.tensor(train.masks[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0:
            print(f"step {step}: loss {loss.item():.4f}", flush=True)
    net.eval()
    with torch.no_grad():
        masks = net(torch.tensor(test.images)).argmax(dim=1).numpy()
    dice = phantoms.dice_per_class(masks, test.masks)
    print(f"trained {STEPS} steps in {time.perf_counter() - start:.1f} s; held-out Dice per "
          f"class {dice.mean(axis=0).round(4)}, foreground {dice[:, 1:].mean():.4f}")
    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(WEIGHTS), metadata={"config": repr(CONFIG), "seed": str(SEED),
                                             "steps": str(STEPS)})
    print(f"wrote {WEIGHTS.name}: {WEIGHTS.stat().st_size} bytes")


if __name__ == "__main__":
    main()
