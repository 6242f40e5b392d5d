"""Staff tool: (re)make ``solutions/a7_streamlit/digits_cnn.pt``, the trained checkpoint
that Assignment 7 ships to students (a support file).

    .venv/bin/python reference_tests/a7_streamlit/make_checkpoint.py

``SmallCNN()`` from the support ``models.py`` trained on scikit-learn's digits (the split
of A2's ``digits.py`` with seed 0, 75 % for training), saved in Assignment 2's checkpoint
format. It prints the held-out accuracy. Rerunning it changes the weights (torch's kernels
are not bit-stable across versions): regenerate the template and revalidate afterwards.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

SOLUTION = Path(__file__).resolve().parents[2] / "solutions" / "a7_streamlit"


def _models():
    spec = importlib.util.spec_from_file_location("a7_models", SOLUTION / "models.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    from sklearn.datasets import load_digits

    torch.manual_seed(0)
    digits = load_digits()
    X = (digits.data.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    y = digits.target.astype(np.int64)
    perm = np.random.default_rng(0).permutation(len(y))
    n_test = round(0.25 * len(y))
    Xtr, ytr = torch.from_numpy(X[perm[n_test:]]), torch.from_numpy(y[perm[n_test:]])
    Xte, yte = torch.from_numpy(X[perm[:n_test]]), torch.from_numpy(y[perm[:n_test]])
    model = _models().SmallCNN()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    epochs, batch = 30, 64
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=1e-2, epochs=epochs, steps_per_epoch=(len(ytr) + batch - 1) // batch)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(ytr))
        for i in range(0, len(ytr), batch):
            idx = order[i:i + batch]
            # a pixel of shift as in A2's augmentation: the model must not rely on position
            shift = tuple(int(s) for s in torch.randint(-1, 2, (2,)))
            xb = torch.roll(Xtr[idx], shifts=shift, dims=(2, 3))
            opt.zero_grad()
            F.cross_entropy(model(xb), ytr[idx]).backward()
            opt.step()
            sched.step()
    model.eval()
    with torch.no_grad():
        acc = (model(Xte).argmax(1) == yte).float().mean().item()
    if acc < 0.9:
        sys.exit(f"held-out accuracy {acc:.3f} below 0.9: nothing written; check the training")
    out = SOLUTION / "digits_cnn.pt"
    torch.save({"model": "SmallCNN", "config": dict(model.config),
                "state_dict": model.state_dict()}, out)
    print(f"held-out accuracy {acc:.3f}; wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
