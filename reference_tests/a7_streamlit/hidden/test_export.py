"""Hidden: Part 1, the export script (export.py).

The exported files are run in the worker by the probes (``torch.jit.load``, onnxruntime)
on digit batches of several sizes; their logits are compared here with the grader's own
float64 forward pass of the checkpoint (conftest.Reference).
"""

import numpy as np
import pytest

from autograder.errors import StudentError

pytestmark = [pytest.mark.visibility("after_published")]

ATOL = 1e-4  # float32 export against the float64 reference


def _batches(a7):
    images, _ = a7.hidden_digits(64)
    x = images.astype(np.float32)[:, None] / 255.0
    return [x[:1], x[1:38], x]  # 1, 37 and 64 images: the batch size must be free


def _check_results(results, batches, reference, what):
    assert len(results) == len(batches), f"{what}: {len(results)} results for {len(batches)} batches"
    for x, got in zip(batches, results, strict=True):
        assert not isinstance(got, str), f"{what} failed on a batch of {len(x)} images: {got}"
        want = reference.logits(x)
        assert isinstance(got, np.ndarray) and got.shape == want.shape, (
            f"{what} returned shape {getattr(got, 'shape', type(got).__name__)} for a batch of "
            f"{len(x)} images, expected {want.shape}")
        err = float(np.max(np.abs(got - want)))
        assert err < ATOL, (
            f"{what}: logits differ from the checkpoint's model by up to {err:.2e} on a batch "
            f"of {len(x)} images (tolerance {ATOL}); was the model in eval mode when exported?")


@pytest.mark.points(2)
@pytest.mark.tags("export")
def test_load_eager(student, reference, a7):
    """load_eager rebuilds the checkpoint's SmallCNN with its weights, in eval mode"""
    export = student.module("export")
    model = export.load_eager(student.probe("support_path", "digits_cnn.pt"))
    modes = student.probe("modes", model)
    training = sorted(name for name, on in modes.items() if on)
    assert not training, f"load_eager returned a model in training mode ({', '.join(training)})"
    x = _batches(a7)[1]
    got = student.probe("module_logits", model, x)
    err = float(np.max(np.abs(got - reference.logits(x))))
    assert err < ATOL, f"the loaded model's logits differ from the checkpoint's by {err:.2e}"
    default = export.load_eager()  # the default path: digits_cnn.pt beside export.py
    got = student.probe("module_logits", default, x)
    err = float(np.max(np.abs(got - reference.logits(x))))
    assert err < ATOL, f"load_eager() (default path) gives logits off by {err:.2e}"


@pytest.mark.tags("export")
def test_load_eager_unknown_class(student):
    """load_eager refuses a checkpoint of a class models.py does not have, naming it"""
    export = student.module("export")
    path = student.probe("scratch_path", "resnet.pt")
    student.probe("write_checkpoint", path, "ResNet50")
    with pytest.raises(StudentError) as info:
        export.load_eager(path)
    err = info.value
    assert getattr(err, "type_name", None) == "ValueError", (
        f"expected ValueError for a checkpoint of model 'ResNet50', got {err}")
    assert "ResNet50" in err.message, f"the message does not name the class: {err.message!r}"


@pytest.mark.points(2)
@pytest.mark.tags("export")
def test_export_torchscript(student, reference, a7):
    """export_torchscript writes a TorchScript file that matches the model for any batch size"""
    export = student.module("export")
    model = export.load_eager(student.probe("support_path", "digits_cnn.pt"))
    path = student.probe("scratch_path", "model.pt")
    export.export_torchscript(model, path)
    info = student.probe("file_info", path)
    assert info["exists"] and info["size"] > 0, f"export_torchscript wrote nothing at {path}"
    batches = _batches(a7)
    out = student.probe("torchscript_run", path, batches)
    _check_results(out["results"], batches, reference, "the TorchScript file")


@pytest.mark.points(2)
@pytest.mark.tags("export")
def test_export_onnx(student, reference, a7):
    """export_onnx writes a valid ONNX file with a dynamic batch that onnxruntime runs like the model"""
    export = student.module("export")
    model = export.load_eager(student.probe("support_path", "digits_cnn.pt"))
    path = student.probe("scratch_path", "model.onnx")
    export.export_onnx(model, path)
    info = student.probe("file_info", path)
    assert info["exists"] and info["size"] > 0, f"export_onnx wrote nothing at {path}"
    batches = _batches(a7)
    out = student.probe("onnx_run", path, batches)
    assert out["checker"] == "ok", f"onnx.checker refuses the file: {out['checker']}"
    assert len(out["inputs"]) == 1 and len(out["outputs"]) == 1, (
        f"expected one input and one output, got {out['inputs']} and {out['outputs']}")
    shape = out["inputs"][0]["shape"]
    assert len(shape) == 4 and shape[1:] == [1, 8, 8], f"input shape {shape}, expected (N, 1, 8, 8)"
    assert not isinstance(shape[0], int), (
        f"the batch dimension is fixed to {shape[0]}; export it as dynamic (dynamic_axes)")
    _check_results(out["results"], batches, reference, "the ONNX file")


@pytest.mark.points(2)
@pytest.mark.tags("export")
def test_main_writes_both_files(student, reference, a7):
    """python export.py --checkpoint ... --out-dir DIR writes DIR/model.pt and DIR/model.onnx"""
    export = student.module("export")
    target = student.probe("scratch_path", "exported")  # a folder main must create
    export.main(["--checkpoint", student.probe("support_path", "digits_cnn.pt"), "--out-dir", target])
    batches = _batches(a7)[:2]
    for name, probe in (("model.pt", "torchscript_run"), ("model.onnx", "onnx_run")):
        path = f"{target}/{name}"
        assert student.probe("file_info", path)["exists"], f"main wrote no {name} in --out-dir"
        _check_results(student.probe(probe, path, batches)["results"], batches, reference,
                       f"{name} written by main")
