"""Assignment 7's shipped files: the template is in sync and ships the trained checkpoint
byte for byte; the grader's own forward pass of the checkpoint (conftest) equals the
official model's, which classifies the digits well; the grader's exports run in
TorchScript and onnxruntime like that forward pass."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from autograder.course.templates import check_template, generate_template

ROOT = Path(__file__).resolve().parents[3]
NAME = "a7_streamlit"
CHECKPOINT = ROOT / "solutions" / NAME / "digits_cnn.pt"


def _load(path: Path, name: str):  # noqa: ANN202
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_template_in_sync_and_ships_the_checkpoint() -> None:
    assert check_template(ROOT, NAME) == []
    files = generate_template(ROOT, NAME)
    assert files[Path("digits_cnn.pt")] == CHECKPOINT.read_bytes()  # binary, byte for byte
    assert Path("models.py") in files and Path("probes.py") in files
    assert Path("make_checkpoint.py") not in files  # staff tooling stays out
    for module in ("export", "predict", "app"):
        assert b"NotImplementedError" in files[Path(f"{module}.py")]


def test_grader_reference_equals_the_official_model() -> None:
    torch = pytest.importorskip("torch")
    sklearn = pytest.importorskip("sklearn.datasets")
    conftest = _load(ROOT / "reference_tests" / NAME / "conftest.py", "_a7_conftest_under_test")
    models = _load(ROOT / "solutions" / NAME / "models.py", "_a7_models_under_test")
    saved = torch.load(CHECKPOINT, map_location="cpu", weights_only=True)
    assert saved["model"] == "SmallCNN" and CHECKPOINT.stat().st_size < 64_000
    model = models.MODEL_CLASSES[saved["model"]](**saved["config"])
    model.load_state_dict(saved["state_dict"])
    model.eval()
    digits = sklearn.load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    with torch.no_grad():
        eager = model(torch.from_numpy(x)).numpy()
    ours = conftest.reference_logits(str(CHECKPOINT), x)
    assert np.max(np.abs(ours - eager)) < 1e-4
    assert (ours.argmax(1) == digits.target).mean() > 0.95
    # what the grader sends to the workers runs like its own forward pass
    files = conftest._exports(str(CHECKPOINT))
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(files["onnx"], providers=["CPUExecutionProvider"])
    batch = x[:37]
    got = session.run(None, {session.get_inputs()[0].name: batch})[0]
    assert np.max(np.abs(got - ours[:37])) < 1e-4
    import io

    scripted = torch.jit.load(io.BytesIO(files["torchscript"]))
    with torch.no_grad():
        got = scripted(torch.from_numpy(batch)).numpy()
    assert np.max(np.abs(got - ours[:37])) < 1e-4
