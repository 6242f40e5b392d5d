"""Public tests for A7: small checks with known answers.

Run them with `autograder check a7` in your assignment folder. They run your code in a
separate process through the `student` fixture; the graded (hidden) tests do the same with
more images and batch sizes, both export formats against the checkpoint's own outputs,
bad files, the app driven by Streamlit's AppTest, the app served by `streamlit run` in a
real browser, and a latency comparison with the eager model.
"""

import io

import numpy as np
import pytest

pytestmark = [pytest.mark.visibility("visible")]


def _png(array):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(array, np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()


def _digit_one():
    image = np.zeros((8, 8), np.uint8)
    image[1:7, 3:5] = 255  # a vertical bar: bright ink on a dark background
    return image


@pytest.mark.points(1)
@pytest.mark.tags("predict")
@pytest.mark.hint("Open the bytes with PIL.Image.open(io.BytesIO(data)), convert('L'), "
                  "np.asarray(..., dtype=np.uint8).")
def test_load_image_png(student):
    """load_image of an 8x8 PNG returns its pixels as uint8 (8, 8)"""
    predict = student.module("predict")
    got = predict.load_image(_png(_digit_one()))
    assert isinstance(got, np.ndarray) and got.dtype == np.uint8 and got.shape == (8, 8)
    np.testing.assert_array_equal(got, _digit_one())


@pytest.mark.points(1)
@pytest.mark.tags("export")
@pytest.mark.hint("torch.jit.script(model).save(path); the model must be in eval mode.")
def test_export_torchscript_runs(student):
    """export_torchscript writes a file that torch.jit.load runs on batches of 1 and 5"""
    export = student.module("export")
    model = export.load_eager(student.probe("support_path", "digits_cnn.pt"))
    path = student.probe("scratch_path", "model.pt")
    export.export_torchscript(model, path)
    x = np.zeros((5, 1, 8, 8), np.float32)
    out = student.probe("torchscript_run", path, [x[:1], x])["results"]
    assert [getattr(o, "shape", o) for o in out] == [(1, 10), (5, 10)]
    # a blank image is the same image in both batches
    np.testing.assert_allclose(out[0][0], out[1][3], atol=1e-5)


@pytest.mark.points(1)
@pytest.mark.tags("predict")
@pytest.mark.hint("predict = softmax of the logits; one (8, 8) image gives shape (10,).")
def test_predict_probabilities(student):
    """predict of one image gives 10 probabilities that sum to 1; a batch of 3 gives (3, 10)"""
    predict = student.module("predict")
    path = student.probe("scratch_path", "model.onnx")
    student.probe("reference_export", "onnx", path)
    model = predict.load_model(path)
    one = predict.predict(model, _digit_one())
    assert one.shape == (10,) and abs(float(one.sum()) - 1) < 1e-5 and (one >= 0).all()
    batch = predict.predict(model, np.stack([_digit_one()] * 3))
    assert batch.shape == (3, 10)
    np.testing.assert_allclose(batch[1], one, atol=1e-5)


@pytest.mark.points(1)
@pytest.mark.tags("app")
@pytest.mark.call_timeout(120)
@pytest.mark.hint("st.file_uploader, then st.metric('Prediction', str(digit)); st.error for "
                  "a ValueError from predict.")
def test_app_upload(student):
    """The app shows st.metric('Prediction') after a good upload and st.error after a bad one"""
    path = student.probe("scratch_path", "model.onnx")
    student.probe("reference_export", "onnx", path)
    out = student.probe("app_session", path, [("one.png", _png(_digit_one()), "image/png"),
                                              ("bad.png", b"not an image", "image/png")])
    assert out["error"] is None, out["error"]
    start, good, bad = out["runs"]
    for run in out["runs"]:
        assert not [e for e in run if e["type"] == "exception"], run
    assert [e["type"] for e in start].count("file_uploader") == 1
    assert [e["label"] for e in good if e["type"] == "metric"] == ["Prediction"]
    assert [e for e in bad if e["type"] == "error"]
    assert not [e for e in bad if e["type"] == "metric"]
