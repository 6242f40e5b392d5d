"""Convergence thresholds and the speed band of A4's hidden suite, measured on the
reference solution.

Instructor tooling (grader side): imports the reference solution, its probes and the
official ECG generator directly, one thread.

1. Speed: the reference TransformerTagger's forward pass (evaluation mode, the
   configuration of ``hidden/test_performance.py``) against the ``lstm_yardstick`` probe
   (torch's nn.LSTM) on the same records, minimum of repeats, in this process (the
   grading's round trips add about a millisecond to both sides, which brings ratios
   closer to 1); the same for two other correct attentions a student might write (a
   Python loop over the query time points, a loop over the heads), to show where the
   band falls; and the deterministic count of aten operations on 40 and 80 time points
   (``op_count`` probe) that ``test_transformer_vectorized_over_time`` compares.
2. Convergence: the setups of ``hidden/test_training.py`` (bidirectional LSTM and GRU
   taggers and the Transformer, 120 Adam steps each) over many seeds. Each seed changes
   the training and held-out records, the initial weights and the batch order. The F1 is
   the grader's (conftest.Ref: its peak picker, +-40 ms, beats cut at the ends ignored).

    .venv/bin/python bench/thresholds_a4.py [--seeds 12] > bench/results/thresholds_a4.txt
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solutions" / "a4_ecg_rnn"
sys.path.insert(0, str(SOLUTION))

import ecg_data  # noqa: E402
import models  # noqa: E402
import probes  # noqa: E402
from train import predict_proba, train  # noqa: E402


def _load_conftest():
    spec = importlib.util.spec_from_file_location(
        "_a4_conftest", ROOT / "reference_tests" / "a4_ecg_rnn" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


conftest = _load_conftest()
Ref = conftest.Ref
spec_training = importlib.util.spec_from_file_location(
    "_a4_test_training", ROOT / "reference_tests" / "a4_ecg_rnn" / "hidden" / "test_training.py")
test_training = importlib.util.module_from_spec(spec_training)
spec_training.loader.exec_module(test_training)
spec_perf = importlib.util.spec_from_file_location(
    "_a4_test_performance",
    ROOT / "reference_tests" / "a4_ecg_rnn" / "hidden" / "test_performance.py")
test_performance = importlib.util.module_from_spec(spec_perf)
spec_perf.loader.exec_module(test_performance)


# ---------------------------------------------------------------- speed


def _loop_over_queries(self, x, mask=None):
    n, t_len, d = x.shape
    dh = d // self.nhead
    q, k, v = self.qkv(x).split(d, dim=-1)
    q, k, v = (z.reshape(n, t_len, self.nhead, dh).transpose(1, 2) for z in (q, k, v))
    rows, outs = [], []
    for t in range(t_len):
        s = (q[:, :, t:t + 1] @ k.transpose(-2, -1)) / math.sqrt(dh)
        if mask is not None:
            s = s.masked_fill(~mask[:, None, None, :], float("-inf"))
        w = torch.softmax(s, dim=-1)
        rows.append(w)
        outs.append(w @ v)
    weights = torch.cat(rows, dim=2)
    out = torch.cat(outs, dim=2).transpose(1, 2).reshape(n, t_len, d)
    return self.proj(out), weights


def _loop_over_heads(self, x, mask=None):
    n, t_len, d = x.shape
    dh = d // self.nhead
    qkv = self.qkv(x)
    outs, ws = [], []
    for h in range(self.nhead):
        q = qkv[..., h * dh:(h + 1) * dh]
        k = qkv[..., d + h * dh:d + (h + 1) * dh]
        v = qkv[..., 2 * d + h * dh:2 * d + (h + 1) * dh]
        s = q @ k.transpose(-2, -1) / math.sqrt(dh)
        if mask is not None:
            s = s.masked_fill(~mask[:, None, :], float("-inf"))
        w = torch.softmax(s, dim=-1)
        ws.append(w)
        outs.append(w @ v)
    return self.proj(torch.cat(outs, dim=-1)), torch.stack(ws, dim=1)


def speed(repeat: int = 7, rounds: int = 3) -> None:
    shape = test_performance.SHAPE
    reference = models.MultiHeadSelfAttention.forward
    print(f"speed: TransformerTagger(4, **{test_performance.MODEL_KW}) forward (eval) / "
          f"lstm_yardstick on records {shape}, "
          f"min of {repeat}, {rounds} rounds; limit {test_performance.MAX_RATIO}x")
    for name, fwd in (("reference (batched heads)", reference),
                      ("loop over heads", _loop_over_heads),
                      ("loop over query time points", _loop_over_queries)):
        models.MultiHeadSelfAttention.forward = fwd
        ratios = []
        for r in range(rounds):
            torch.manual_seed(r)
            model = models.TransformerTagger(4, **test_performance.MODEL_KW).eval()
            xs = [torch.randn(shape) for _ in range(repeat + 1)]
            t_m, t_y = [], []
            for x in xs:
                start = time.perf_counter()
                model(x)
                t_m.append(time.perf_counter() - start)
                start = time.perf_counter()
                probes.lstm_yardstick(x)
                t_y.append(time.perf_counter() - start)
            ratios.append(min(t_m[1:]) / min(t_y[1:]))
            ms = (min(t_m[1:]) * 1e3, min(t_y[1:]) * 1e3)
        ops = [probes.op_count(model, torch.randn(2, t, 4)) for t in (40, 80)]
        print(f"  {name:30s} ratio {min(ratios):5.2f}-{max(ratios):5.2f}x "
              f"(last round {ms[0]:.2f} ms vs {ms[1]:.2f} ms); aten ops at T=40 / 80: "
              f"{ops[0]} / {ops[1]}", flush=True)
    models.MultiHeadSelfAttention.forward = reference


# ---------------------------------------------------------------- convergence

SETUPS = {
    "lstm": (lambda: models.RNNTagger(4, 16, cell="lstm", bidirectional=True),
             test_training.RNN_KW),
    "gru": (lambda: models.RNNTagger(4, 16, cell="gru", bidirectional=True),
            test_training.RNN_KW),
    "transformer": (lambda: models.TransformerTagger(4, d_model=16, nhead=2, num_layers=2,
                                                     dim_feedforward=32, dropout=0.1,
                                                     max_len=100),
                    test_training.TRANSFORMER_KW),
}


def records(seed: int) -> tuple[ecg_data.EcgSet, ecg_data.EcgSet]:
    kw = {"heart_rate": conftest.HIDDEN_HEART_RATE, "noise": conftest.HIDDEN_NOISE}
    return (ecg_data.make_ecg(conftest.N_TRAIN, conftest.DURATION, seed=seed, **kw),
            ecg_data.make_ecg(conftest.N_TEST, conftest.DURATION, seed=seed + 1, **kw))


def run(kind: str, data: tuple[ecg_data.EcgSet, ecg_data.EcgSet], init_seed: int,
        batch_seed: int) -> tuple[float, float]:
    make, kw = SETUPS[kind]
    tr, te = data
    torch.manual_seed(init_seed)
    model = make()
    start = time.perf_counter()
    train(model, torch.tensor(tr.signals), torch.tensor(tr.targets),
          **{**kw, "seed": batch_seed})
    seconds = time.perf_counter() - start
    probs = predict_proba(model, torch.tensor(te.signals)).numpy()
    picked = Ref.pick_peaks(probs, 0.5, 10)
    f1 = Ref.f1(picked, te.peaks, test_training.TOL, probs.shape[1], test_training.EDGE)
    return f1, seconds


def convergence(seeds: int) -> None:
    print(f"convergence: {conftest.N_TRAIN} training / {conftest.N_TEST} held-out records of "
          f"{conftest.DURATION} s at 50 Hz, heart rate {conftest.HIDDEN_HEART_RATE} bpm, "
          f"noise {conftest.HIDDEN_NOISE}; RNN {test_training.RNN_KW}, Transformer "
          f"{test_training.TRANSFORMER_KW}")
    results: dict[str, list[float]] = {k: [] for k in SETUPS}
    for seed in range(seeds):
        data = records(50_000 + 10 * seed)
        line = []
        for kind in SETUPS:
            f1, seconds = run(kind, data, seed, seed)
            results[kind].append(f1)
            line.append(f"{kind} {f1:.4f} ({seconds:.1f} s)")
        print(f"seed {seed:2d}: " + "  ".join(line), flush=True)
    hidden = (ecg_data.make_ecg(conftest.N_TRAIN, conftest.DURATION, seed=conftest.HIDDEN_SEED + 1,
                                heart_rate=conftest.HIDDEN_HEART_RATE, noise=conftest.HIDDEN_NOISE),
              ecg_data.make_ecg(conftest.N_TEST, conftest.DURATION, seed=conftest.HIDDEN_SEED + 2,
                                heart_rate=conftest.HIDDEN_HEART_RATE, noise=conftest.HIDDEN_NOISE))
    # the hidden suite: manual_seed(0) before the model, batches with seed 0
    print("hidden seeds: " + "  ".join(f"{k} {run(k, hidden, 0, 0)[0]:.4f}" for k in SETUPS))
    for kind, values in results.items():
        v = np.array(values)
        print(f"{kind:12s} F1 over {len(v)} seeds: min {v.min():.4f}  median {np.median(v):.4f}  "
              f"max {v.max():.4f}  (mean {v.mean():.4f}, std {v.std():.4f}); threshold "
              f"{test_training.MIN_F1} is {(v.min() - test_training.MIN_F1) / max(v.std(), 1e-9):.1f} "
              "std below the worst seed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=12)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-convergence", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread")
    if not args.skip_speed:
        speed()
    if not args.skip_convergence:
        convergence(args.seeds)


if __name__ == "__main__":
    main()
