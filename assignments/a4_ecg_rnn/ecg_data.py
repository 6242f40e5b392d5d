"""Synthetic multi-lead ECG with R-peak labels (support file: you do not need to edit it).

Each record is one noise-free ECG drawn by neurokit2's dynamical simulator
(``nk.ecg_simulate``, ECGSYN, at 250 Hz) with a random heart rate, its R peaks found by
``nk.ecg_peaks`` on that noise-free signal, then brought down to ``fs`` Hz (mean over
blocks of ``250 / fs`` samples). The leads are mixtures of it: lead ``k`` is
``w_k * ecg + baseline wander + noise``, with a random weight ``w_k`` per lead (some leads
see the ECG upside down, some weakly), a slow sinusoidal baseline and Gaussian noise of a
random level. Each lead of each record is then standardized (zero mean, unit variance).

Conventions:

- ``signals``: float32 ``(N, T, L)``: batch, time, leads (``T = duration * fs``);
- ``peaks``: a list of ``N`` int64 arrays, the sample indices of the R peaks of each record;
- ``targets``: float32 ``(N, T)``: 1 within ``width`` samples of an R peak, else 0
  (:func:`targets_from_peaks`); the per-time-point labels of the trigger detector.

neurokit2 is imported only when records are generated (it takes a second or two); the
scoring helpers (:func:`match_peaks`, :func:`f1_score`) are numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIM_FS = 250  # Hz of the simulator
FS = 50  # Hz of the records by default
NUM_LEADS = 4
TOLERANCE_S = 0.04  # a predicted trigger within 40 ms of a true R peak is a hit


@dataclass(frozen=True)
class EcgSet:
    """A batch of records: ``signals`` float32 (N, T, L), ``targets`` float32 (N, T),
    ``peaks`` (list of N int64 arrays), ``fs`` (Hz), ``heart_rates`` float64 (N,) bpm."""

    signals: np.ndarray
    targets: np.ndarray
    peaks: list[np.ndarray]
    fs: int
    heart_rates: np.ndarray

    def __len__(self) -> int:
        return len(self.signals)


def targets_from_peaks(peaks: list[np.ndarray], length: int, width: int = 1) -> np.ndarray:
    """float32 ``(N, length)``: 1 at every sample within ``width`` samples of a peak
    (``|t - peak| <= width``), else 0."""
    out = np.zeros((len(peaks), length), np.float32)
    for i, p in enumerate(peaks):
        for d in range(-width, width + 1):
            idx = np.asarray(p, np.int64) + d
            out[i, idx[(idx >= 0) & (idx < length)]] = 1.0
    return out


def _simulate_one(nk, duration: float, fs: int, heart_rate: float, seed: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One noise-free ECG of ``duration`` seconds at ``fs`` Hz and its R-peak indices."""
    factor = SIM_FS // fs
    margin = 1.0  # seconds simulated before the record: a random phase of the first beat
    clean = np.asarray(nk.ecg_simulate(duration=duration + 2 * margin, sampling_rate=SIM_FS,
                                       heart_rate=heart_rate, noise=0.0, random_state=seed),
                       np.float64)
    _, info = nk.ecg_peaks(clean, sampling_rate=SIM_FS)
    r_peaks = np.asarray(info["ECG_R_Peaks"], np.int64)
    n_out = int(round(duration * fs))
    start = int(rng.integers(0, margin * SIM_FS))
    window = clean[start:start + n_out * factor]
    low = window.reshape(n_out, factor).mean(axis=1)
    inside = r_peaks[(r_peaks >= start) & (r_peaks < start + n_out * factor)]
    return low, (inside - start) // factor


def make_ecg(
    n: int,
    duration: float = 4.0,
    *,
    fs: int = FS,
    heart_rate: tuple[float, float] = (55.0, 95.0),
    noise: tuple[float, float] = (0.02, 0.15),
    leads: int = NUM_LEADS,
    width: int = 1,
    seed: int | None = None,
    rng: np.random.Generator | None = None,
) -> EcgSet:
    """Draw ``n`` records of ``duration`` seconds at ``fs`` Hz (a divisor of 250).

    Heart rates are drawn uniformly from ``heart_rate`` (bpm), the noise level of each
    lead from ``noise`` (standard deviation, relative to the R-wave height of about 1).
    Randomness comes from ``rng`` if given, else from ``np.random.default_rng(seed)``:
    the same seed gives the same records. ``width`` widens the targets (see
    :func:`targets_from_peaks`).
    """
    if SIM_FS % fs:
        raise ValueError(f"fs must divide {SIM_FS}, got {fs}")
    import neurokit2 as nk  # slow import: only when records are made

    if rng is None:
        rng = np.random.default_rng(seed)
    t_len = int(round(duration * fs))
    signals = np.zeros((n, t_len, leads), np.float64)
    peaks: list[np.ndarray] = []
    rates = rng.uniform(heart_rate[0], heart_rate[1], n)
    t = np.arange(t_len) / fs
    for i in range(n):
        ecg, p = _simulate_one(nk, duration, fs, float(rates[i]), int(rng.integers(2**31)), rng)
        peaks.append(p.astype(np.int64))
        weights = rng.uniform(0.3, 1.2, leads) * np.where(rng.random(leads) < 0.25, -1.0, 1.0)
        weights[0] = abs(weights[0]) + 0.3  # one clear lead per record
        wander = rng.uniform(0.0, 0.3, leads)[None, :] * np.sin(
            2 * np.pi * rng.uniform(0.1, 0.5, leads)[None, :] * t[:, None]
            + rng.uniform(0, 2 * np.pi, leads)[None, :])
        sigma = rng.uniform(noise[0], noise[1], leads)
        x = ecg[:, None] * weights[None, :] + wander + rng.standard_normal((t_len, leads)) * sigma
        x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-8)
        signals[i] = x
    return EcgSet(signals.astype(np.float32), targets_from_peaks(peaks, t_len, width), peaks,
                  fs, rates)


def match_peaks(pred: np.ndarray, true: np.ndarray, tolerance: int) -> tuple[int, int, int]:
    """Greedy one-to-one matching of predicted and true peak indices of one record: each
    true peak takes the nearest unused prediction within ``tolerance`` samples.
    Returns ``(true positives, false positives, false negatives)``."""
    pred = sorted(int(p) for p in np.asarray(pred).ravel())
    used = [False] * len(pred)
    tp = 0
    for q in sorted(int(v) for v in np.asarray(true).ravel()):
        best, best_d = -1, tolerance + 1
        for j, p in enumerate(pred):
            d = abs(p - q)
            if not used[j] and d <= tolerance and d < best_d:
                best, best_d = j, d
        if best >= 0:
            used[best] = True
            tp += 1
    return tp, len(pred) - tp, len(np.asarray(true).ravel()) - tp


def f1_score(pred: list[np.ndarray], true: list[np.ndarray], fs: int = FS,
             tolerance_s: float = TOLERANCE_S) -> float:
    """Trigger F1 over all records: ``2 TP / (2 TP + FP + FN)`` with hits within
    ``tolerance_s`` seconds (``floor(tolerance_s * fs)`` samples, at least 1)."""
    tol = max(1, int(np.floor(tolerance_s * fs + 1e-9)))
    tp = fp = fn = 0
    for p, q in zip(pred, true, strict=True):
        a, b, c = match_peaks(p, q, tol)
        tp, fp, fn = tp + a, fp + b, fn + c
    return 2 * tp / max(2 * tp + fp + fn, 1)
