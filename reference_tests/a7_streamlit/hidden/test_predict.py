"""Hidden: Part 2, inference with the exported model (predict.py).

``load_model`` and ``predict`` are tested on files that the grader exports from the
checkpoint with its own code (conftest's ``exported``: the code of the probe
``reference_export``), so a bug in export.py costs only the export tests. Expected
probabilities come from the grader's float64 forward pass of the checkpoint.
"""

import io

import numpy as np
import pytest

from autograder.errors import StudentError

pytestmark = [pytest.mark.visibility("after_published")]

ATOL = 1e-4


def _raises_value_error(call, what):
    with pytest.raises(StudentError) as info:
        call()
    err = info.value
    assert err.type_name == "ValueError", f"{what}: expected ValueError, got {err}"
    return err.message


@pytest.mark.points(2)
@pytest.mark.tags("predict")
def test_load_image(student, a7):
    """load_image decodes PNG, BMP and gray RGB files of 8x8 pixels to uint8 (8, 8) arrays"""
    predict = student.module("predict")
    images, _ = a7.hidden_digits(3, seed=11)
    for image, fmt, mode in zip(images, ("PNG", "BMP", "PNG"), ("L", "L", "RGB"), strict=True):
        got = predict.load_image(a7.encode(image, fmt, mode))
        assert isinstance(got, np.ndarray), f"load_image returned {type(got).__name__}"
        assert got.shape == (8, 8) and got.dtype == np.uint8, (
            f"load_image of an 8x8 {mode} {fmt} returned {got.dtype} {got.shape}, "
            "expected uint8 (8, 8)")
        np.testing.assert_array_equal(got, image, err_msg=f"pixels of an 8x8 {mode} {fmt}")


@pytest.mark.tags("predict")
def test_load_image_jpeg(student, a7):
    """load_image decodes an 8x8 JPEG as Pillow reads it"""
    from PIL import Image

    predict = student.module("predict")
    images, _ = a7.hidden_digits(1, seed=15)
    data = a7.encode(images[0], "JPEG")
    want = np.asarray(Image.open(io.BytesIO(data)).convert("L"))
    got = predict.load_image(data)
    assert isinstance(got, np.ndarray) and got.shape == (8, 8) and got.dtype == np.uint8, (
        f"load_image of an 8x8 JPEG returned {getattr(got, 'dtype', type(got).__name__)} "
        f"{getattr(got, 'shape', '')}, expected uint8 (8, 8)")
    np.testing.assert_array_equal(got, want, err_msg="pixels of an 8x8 JPEG")


@pytest.mark.points(2)
@pytest.mark.tags("predict", "bad_input")
def test_load_image_bad_files(student, a7):
    """load_image raises ValueError for a file that is not an image and for an image of another size (naming it)"""
    predict = student.module("predict")
    for data, what in ((b"hello, this is not a picture", "a text file"),
                       (a7.PNG_MAGIC + b"\x00" * 40, "a broken PNG"),
                       (b"", "an empty file")):
        _raises_value_error(lambda data=data: predict.load_image(data), f"load_image of {what}")
    for size in (16, 28):
        big = np.zeros((size, size), np.uint8)
        message = _raises_value_error(lambda big=big: predict.load_image(a7.encode(big)),
                                      f"load_image of a {size}x{size} PNG")
        assert f"{size}x{size}" in message, (
            f"the error for a {size}x{size} image does not give its size as {size}x{size}: "
            f"{message!r}")


@pytest.mark.points(2)
@pytest.mark.tags("predict")
@pytest.mark.parametrize("kind", ["onnx", "torchscript"])
def test_load_model(student, exported, reference, a7, kind):
    """load_model returns a function from float32 (N, 1, 8, 8) to the logits (N, 10)"""
    predict = student.module("predict")
    fn = predict.load_model(exported(kind))
    images, _ = a7.hidden_digits(45, seed=12)
    x = images.astype(np.float32)[:, None] / 255.0
    for batch in (x[:1], x[1:], x):
        got = fn(batch)
        want = reference.logits(batch)
        assert isinstance(got, np.ndarray), (
            f"the loaded {kind} model returned {type(got).__name__}, expected a NumPy array")
        assert got.shape == want.shape, f"logits of shape {got.shape}, expected {want.shape}"
        err = float(np.max(np.abs(got - want)))
        assert err < ATOL, f"{kind} logits differ from the checkpoint's model by {err:.2e}"


@pytest.mark.tags("predict", "bad_input")
def test_load_model_missing_file(student):
    """load_model raises FileNotFoundError for a path with no file"""
    predict = student.module("predict")
    path = student.probe("scratch_path", "missing.onnx")
    with pytest.raises(StudentError) as info:
        predict.load_model(path)
    assert info.value.type_name == "FileNotFoundError", (
        f"load_model of a missing file: expected FileNotFoundError, got {info.value}")


@pytest.mark.points(2)
@pytest.mark.tags("predict")
def test_to_batch(student, a7):
    """to_batch gives float32 (N, 1, 8, 8) in 0..1 for bytes, (8, 8) and (N, 8, 8), uint8 or float"""
    predict = student.module("predict")
    images, _ = a7.hidden_digits(5, seed=16)
    scaled = images.astype(np.float64) / 255.0
    cases = [(images, scaled, "a uint8 batch (5, 8, 8)"),
             (images[2], scaled[2:3], "one uint8 image (8, 8)"),
             (scaled.astype(np.float32), scaled, "a float32 batch in 0..1"),
             (scaled[4], scaled[4:5], "one float64 image in 0..1"),
             (a7.encode(images[1]), scaled[1:2], "the bytes of an 8x8 PNG")]
    for value, want, what in cases:
        got = predict.to_batch(value)
        assert isinstance(got, np.ndarray) and got.dtype == np.float32, (
            f"to_batch of {what} returned {getattr(got, 'dtype', type(got).__name__)}, "
            "expected float32")
        assert got.shape == (len(want), 1, 8, 8), (
            f"to_batch of {what} has shape {got.shape}, expected {(len(want), 1, 8, 8)}")
        err = float(np.max(np.abs(got[:, 0] - want)))
        assert err < 1e-6, f"to_batch of {what}: values off by {err:.2e} (uint8 / 255, floats as they are)"


def _check_probs(got, want, what):
    assert isinstance(got, np.ndarray) and got.dtype.kind == "f", (
        f"{what}: predict returned {type(got).__name__} {getattr(got, 'dtype', '')}, "
        "expected a float NumPy array")
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    sums = got.sum(axis=-1)
    assert np.allclose(sums, 1.0, atol=1e-5), (
        f"{what}: probabilities sum to {np.ravel(sums)[:3]}..., not 1: is the softmax missing?")
    err = float(np.max(np.abs(got - want)))
    assert err < ATOL, (
        f"{what}: probabilities differ from the checkpoint's model by up to {err:.2e}; "
        "uint8 pixels are divided by 255, float pixels used as they are")


@pytest.mark.points(3)
@pytest.mark.tags("predict")
@pytest.mark.parametrize("kind", ["onnx", "torchscript"])
def test_predict_arrays(student, exported, reference, a7, kind):
    """predict: uint8 and float images and batches give the model's softmax, (10,) or (N, 10)"""
    predict = student.module("predict")
    model = predict.load_model(exported(kind))
    images, _ = a7.hidden_digits(33, seed=13)
    want = reference.probs_uint8(images)
    _check_probs(predict.predict(model, images), want, "a uint8 batch (33, 8, 8)")
    _check_probs(predict.predict(model, images[:1]), want[:1], "a uint8 batch (1, 8, 8)")
    _check_probs(predict.predict(model, images[5]), want[5], "one uint8 image (8, 8)")
    for dtype in (np.float32, np.float64):
        floats = images.astype(dtype) / 255.0
        _check_probs(predict.predict(model, floats), want, f"a {np.dtype(dtype)} batch in [0, 1]")
        _check_probs(predict.predict(model, floats[7]), want[7], f"one {np.dtype(dtype)} image")


@pytest.mark.points(2)
@pytest.mark.tags("predict")
def test_predict_bytes(student, exported, reference, a7):
    """predict of an image file's bytes gives the probabilities of its pixels, shape (10,)"""
    predict = student.module("predict")
    model = predict.load_model(exported("onnx"))
    images, _ = a7.hidden_digits(3, seed=14)
    want = reference.probs_uint8(images)
    for i, (fmt, mode) in enumerate((("PNG", "L"), ("BMP", "L"), ("PNG", "RGB"))):
        _check_probs(predict.predict(model, a7.encode(images[i], fmt, mode)), want[i],
                     f"the bytes of an 8x8 {mode} {fmt}")


@pytest.mark.points(2)
@pytest.mark.tags("predict", "bad_input")
def test_predict_bad_input(student, exported, a7):
    """predict raises ValueError for bad shapes, NaN pixels, unsupported dtypes and files that are not 8x8 images"""
    predict = student.module("predict")
    model = predict.load_model(exported("onnx"))
    nan = np.full((8, 8), 0.5)
    nan[3, 4] = np.nan
    cases = [
        (np.zeros((9, 9), np.uint8), "an array of shape (9, 9)"),
        (np.zeros((2, 1, 8, 8), np.uint8), "an array of shape (2, 1, 8, 8)"),
        (np.zeros(64, np.uint8), "an array of shape (64,)"),
        (nan, "an image with a NaN pixel"),
        (np.array([[np.inf] * 8] * 8), "an image with infinite pixels"),
        (np.zeros((8, 8), np.complex64), "a complex64 image"),
        (b"GIF89a but not really", "bytes that are not an image"),
        (a7.encode(np.zeros((12, 12), np.uint8)), "the bytes of a 12x12 PNG"),
    ]
    for value, what in cases:
        _raises_value_error(lambda value=value: predict.predict(model, value), f"predict of {what}")
