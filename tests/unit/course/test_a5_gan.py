"""Assignment 5's shipped files: the template is in sync, the trained segmenter ships as a
binary support file, loads with safetensors into the grader's copy of the model, is small,
and segments real phantoms; the README tells students how notebooks are graded."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from autograder.course.templates import check_template, generate_template

ROOT = Path(__file__).resolve().parents[3]
NAME = "a5_gan"


def _load(path: Path, name: str):  # noqa: ANN202
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_template_in_sync_and_ships_the_segmenter() -> None:
    assert check_template(ROOT, NAME) == []
    files = generate_template(ROOT, NAME)
    weights = (ROOT / "solutions" / NAME / "segmenter.safetensors").read_bytes()
    assert files[Path("segmenter.safetensors")] == weights  # binary, byte for byte
    assert Path("segmenter.py") in files and Path("phantoms.py") in files
    assert Path("make_segmenter.py") not in files  # instructor tooling stays out


def test_segmenter_weights_small_and_segment_phantoms() -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    folder = ROOT / "solutions" / NAME
    assert (folder / "segmenter.safetensors").stat().st_size < 500_000
    segmenter = _load(folder / "segmenter.py", "_a5_test_segmenter")
    phantoms = _load(folder / "phantoms.py", "_a5_test_phantoms")
    net = segmenter.load_segmenter()
    assert not net.training
    data = phantoms.make_phantoms(32, 32, seed=12_345)
    with torch.no_grad():
        masks = net(torch.as_tensor(data.images)).argmax(dim=1).numpy()
    dice = phantoms.dice_per_class(masks, data.masks)[:, 1:].mean()
    assert dice > 0.9


def test_the_same_a3_unet_code() -> None:
    """segmenter.py's copy keeps A3's architecture: the state_dict names of A3's UNet."""
    torch = pytest.importorskip("torch")
    a3 = ROOT / "solutions" / "a3_cnn_seg"
    sys.path.insert(0, str(a3))
    try:
        unet = _load(a3 / "unet.py", "_a5_test_a3_unet")
        ours = _load(ROOT / "solutions" / NAME / "segmenter.py", "_a5_test_segmenter2")
        a3_names = {k for k in unet.UNet(1, 4, depth=2, width=8).state_dict()
                    if not k.startswith("up.")}
        assert set(ours.UNet(1, 4, depth=2, width=8).state_dict()) == a3_names
        x = torch.zeros(1, 1, 32, 32)
        assert ours.load_segmenter()(x).shape == (1, 4, 32, 32)
    finally:
        sys.path.remove(str(a3))
        sys.modules.pop("blocks", None)


def test_readme_tells_students_how_notebooks_are_graded() -> None:
    readme = (ROOT / "assignments" / NAME / "README.md").read_text()
    assert "`skip-grading`" in readme and "`# autograder: skip`" in readme
    assert "the twin you leave untouched is ignored" in readme
