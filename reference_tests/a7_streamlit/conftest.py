"""Grader-side helpers for the A7 suite (never shipped to students).

Everything here runs in the grader. Expected values come from :func:`reference_logits`,
the grader's float64 forward pass of ``SmallCNN`` written with ``torch.nn.functional``
from the official checkpoint's weights (``digits_cnn.pt``, loaded with
``weights_only=True``); it shares no code with the support ``models.py`` or with anything
that runs in the worker. Test images are scikit-learn's digits, picked with seeds that
appear in no student file, encoded here (Pillow) into the bytes the worker receives.
Screenshots of the browser test are saved beside ``results.json`` (``screenshots/``) or,
without one, in a folder of the grader's temp directory, and named in the test's output.
"""

from __future__ import annotations

import functools
import io
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

HIDDEN_SEED = 70_731
BN_EPS = 1e-5
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- the official checkpoint


def checkpoint_path(support: str | None) -> Path:
    here = Path(__file__).resolve().parent
    candidates = [Path(support) / "digits_cnn.pt"] if support else []
    candidates.append(here.parent.parent / "solutions" / here.name / "digits_cnn.pt")
    for path in candidates:
        if path.is_file():
            return path
    raise RuntimeError(f"digits_cnn.pt not found in {[str(c) for c in candidates]}")


@functools.lru_cache(maxsize=2)
def _weights(path: str) -> dict[str, Any]:
    import torch

    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    assert checkpoint["model"] == "SmallCNN", checkpoint["model"]
    assert checkpoint["config"]["channels"] == [8, 16], checkpoint["config"]
    return {k: v.double() for k, v in checkpoint["state_dict"].items() if v.is_floating_point()}


def reference_logits(path: str, x: np.ndarray) -> np.ndarray:
    """float64 logits of the checkpoint's SmallCNN (eval mode) for x (N, 1, 8, 8)."""
    import torch
    import torch.nn.functional as F

    w = _weights(path)

    def bn(h: Any, p: str) -> Any:
        return F.batch_norm(h, w[f"{p}.running_mean"], w[f"{p}.running_var"], w[f"{p}.weight"],
                            w[f"{p}.bias"], training=False, eps=BN_EPS)

    with torch.no_grad():
        h = torch.as_tensor(np.asarray(x, np.float64))
        h = F.relu(bn(F.conv2d(h, w["features.0.conv1.weight"], padding=1), "features.0.bn1"))
        h = F.relu(bn(F.conv2d(h, w["features.0.conv2.weight"], padding=1), "features.0.bn2"))
        h = F.relu(bn(F.conv2d(h, w["features.1.layers.0.weight"], stride=2, padding=1),
                      "features.1.layers.1"))
        h = F.relu(bn(F.conv2d(h, w["features.1.layers.3.weight"], padding=1),
                      "features.1.layers.4"))
        h = h.mean(dim=(2, 3))
        return (h @ w["head.weight"].T + w["head.bias"]).numpy()


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class Reference:
    """The grader's expected outputs for the official checkpoint."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def logits(self, x: np.ndarray) -> np.ndarray:
        return reference_logits(self.path, x)

    def probs_uint8(self, images: np.ndarray) -> np.ndarray:
        """Probabilities for uint8 images (N, 8, 8) or (8, 8), as the contract reads them."""
        x = np.asarray(images, np.float64) / 255.0
        return softmax(self.logits(x.reshape(-1, 1, 8, 8))).reshape(*np.shape(images)[:-2], 10)


@pytest.fixture(scope="session")
def reference(pytestconfig: pytest.Config) -> Reference:
    return Reference(checkpoint_path(pytestconfig.getoption("ag_support", default=None)))


@functools.lru_cache(maxsize=2)
def _exports(checkpoint: str) -> dict[str, bytes]:
    """The checkpoint exported to TorchScript and ONNX here, in the grader, with the official
    ``models.py`` beside it and the code of the ``reference_export`` probe."""
    import importlib.util
    import warnings

    import torch

    spec = importlib.util.spec_from_file_location(
        "_a7_grader_models", Path(checkpoint).parent / "models.py")
    assert spec is not None and spec.loader is not None
    models = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(models)
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model = models.MODEL_CLASSES[saved["model"]](**saved["config"])
    model.load_state_dict(saved["state_dict"])
    model.eval()
    out: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(model).save(f"{tmp}/model.pt")
        torch.onnx.export(model, (torch.zeros(2, 1, 8, 8),), f"{tmp}/model.onnx", dynamo=False,
                          input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
        for kind, name in (("torchscript", "model.pt"), ("onnx", "model.onnx")):
            out[kind] = Path(tmp, name).read_bytes()
    return out


@pytest.fixture
def exported(reference: Reference, student: Any) -> Any:
    """exported(kind) -> the path, in the worker, of the checkpoint exported by the grader
    ("onnx" or "torchscript"; made once per grading, sent to each worker that needs it)."""
    files = _exports(reference.path)

    def place(kind: str) -> str:
        return student.probe("write_file", "model.onnx" if kind == "onnx" else "model.pt",
                             files[kind])

    return place


# ---------------------------------------------------------------- images


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return np.round(d.images / 16.0 * 255.0).astype(np.uint8), d.target.astype(np.int64)


def hidden_digits(n: int, seed: int = HIDDEN_SEED) -> tuple[np.ndarray, np.ndarray]:
    """n digit images (uint8, (n, 8, 8), bright ink on dark) and their labels."""
    images, labels = _digits()
    pick = np.random.default_rng(seed).choice(len(labels), size=n, replace=False)
    return images[pick].copy(), labels[pick].copy()


def encode(image: np.ndarray, fmt: str = "PNG", mode: str = "L") -> bytes:
    """An image file's bytes (Pillow) of a uint8 (H, W) array, in ``mode`` ("L", "RGB"...:
    gray pixels stay gray, so every grayscale conversion reads them back alike)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8), mode="L").convert(mode).save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(HIDDEN_SEED + 1)


# ---------------------------------------------------------------- AppTest snapshots


def of_type(run: list[dict[str, Any]], *kinds: str) -> list[dict[str, Any]]:
    return [e for e in run if e["type"] in kinds]


def describe(run: list[dict[str, Any]]) -> str:
    """What a run of the app showed, in a line per element (for failure messages)."""
    lines = []
    for e in run:
        shown = {k: v for k, v in e.items() if k not in ("type", "traceback")}
        if "columns" in shown:
            shown = {"columns": list(shown["columns"]), "rows": len(shown.get("index", []))}
        text = f"  {e['type']}: {shown}" if shown else f"  {e['type']}"
        lines.append(text[:300])
    return "\n".join(lines) or "  (nothing)"


def exception_text(run: list[dict[str, Any]]) -> str:
    """The app's exceptions as the page shows them (message and the end of the trace)."""
    out = []
    for e in of_type(run, "exception"):
        trace = "\n".join(e.get("traceback", [])[-6:])
        out.append(f"{e.get('message', '')}\n{trace}".strip())
    return "\n\n".join(out)


def probability_table(run: list[dict[str, Any]]) -> np.ndarray | None:
    """The ``probability`` column of the first table or dataframe with 10 rows."""
    for e in of_type(run, "table", "dataframe"):
        column = e.get("columns", {}).get("probability")
        if column is not None and len(column) == 10:
            try:
                return np.asarray(column, dtype=np.float64)
            except (TypeError, ValueError):
                return None
    return None


# ---------------------------------------------------------------- screenshots


@pytest.fixture
def save_screenshot(pytestconfig: pytest.Config, request: pytest.FixtureRequest) -> Any:
    """save_screenshot(png_bytes, label) -> the path where staff find it."""
    results = pytestconfig.getoption("ag_results", default=None)
    if results:
        folder = Path(results).resolve().parent / "screenshots"
    else:
        folder = Path(tempfile.gettempdir()) / "autograder-a7-screenshots"
    folder.mkdir(parents=True, exist_ok=True)

    def save(png: Any, label: str) -> Path:
        if not isinstance(png, bytes) or not png.startswith(PNG_MAGIC):
            raise AssertionError(f"the browser's screenshot of {label} is not a PNG")
        path = folder / f"{request.node.name}-{label}.png"
        path.write_bytes(png)
        return path

    return save


@pytest.fixture(scope="session")
def a7() -> SimpleNamespace:
    """The helpers above, for the test modules (which do not import this file)."""
    return SimpleNamespace(hidden_digits=hidden_digits, encode=encode, of_type=of_type,
                           describe=describe, exception_text=exception_text,
                           probability_table=probability_table, softmax=softmax,
                           PNG_MAGIC=PNG_MAGIC)
