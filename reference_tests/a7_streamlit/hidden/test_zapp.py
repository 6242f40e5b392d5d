"""Hidden: Part 3, the Streamlit app (app.py), driven by Streamlit's AppTest in the worker.

The probe ``app_session`` runs app.py with AppTest on a model file the grader exported
(conftest's ``exported``) and returns the elements of each run as plain data (type,
label, value, table columns); the verdicts, with the probabilities the grader computes
itself, are made here. One session with the ONNX model serves several tests: it starts
the app, uploads three good files (PNG gray and RGB, BMP), a file that is not an image, a
16x16 image, a good file again, and clears the uploader (the tests judge the runs they
name; the data is computed once per grading). The TorchScript model and a missing model
file get sessions of their own.

(Named test_z* so that it runs after the faster export and predict tests: a mutant's
grading stops at its first failure.)
"""

import numpy as np
import pytest

pytestmark = [pytest.mark.visibility("after_published"), pytest.mark.call_timeout(120)]

ATOL = 1e-3  # what a table of float32 probabilities shows
GOOD, BAD, AGAIN, CLEAR = (1, 2, 3), (4, 5), 6, 7  # runs of the shared session


def _uploads(a7):
    images, _ = a7.hidden_digits(4, seed=21)
    files = [("digit.png", a7.encode(images[0]), "image/png"),
             ("digit_rgb.png", a7.encode(images[1], "PNG", "RGB"), "image/png"),
             ("digit.bmp", a7.encode(images[2], "BMP"), "image/bmp"),
             ("notes.png", b"these are my notes, not a picture", "image/png"),
             ("big.png", a7.encode(np.zeros((16, 16), np.uint8)), "image/png"),
             ("good.png", a7.encode(images[3]), "image/png"),
             None]
    return images, files


@pytest.fixture(scope="session")
def app_runs():
    """The shared session's data, once per grading (plain data, judged by each test)."""
    return {}


def _shared(student, exported, a7, app_runs):
    if "onnx" not in app_runs:
        images, files = _uploads(a7)
        path = exported("onnx")
        out = student.probe("app_session", path, files)
        app_runs["onnx"] = (images, files, out, path)
    images, files, out, path = app_runs["onnx"]
    assert out["error"] is None, f"the app could not be run: {out['error']}"
    assert len(out["runs"]) == len(files) + 1, "the session ended early"
    return images, files, out, path


def _no_exception(run, a7, when):
    exc = a7.of_type(run, "exception")
    assert not exc, f"the app raised an exception {when}:\n{a7.exception_text(run)}"


def _check_prediction(run, want, a7, when):
    _no_exception(run, a7, when)
    errors = a7.of_type(run, "error")
    assert not errors, f"the app shows an error {when}: {errors[0]['value']!r}"
    metrics = [m for m in a7.of_type(run, "metric") if m["label"].strip() == "Prediction"]
    assert len(metrics) == 1, (
        f"expected one st.metric labelled 'Prediction' {when}; the page shows:\n{a7.describe(run)}")
    digit = int(np.argmax(want))
    assert metrics[0]["value"].strip() == str(digit), (
        f"the app predicts {metrics[0]['value']!r} {when}; the model's answer is {digit}")
    table = a7.probability_table(run)
    assert table is not None, (
        f"no st.table or st.dataframe with 10 rows and a 'probability' column {when}; the "
        f"page shows:\n{a7.describe(run)}")
    err = float(np.max(np.abs(table - want)))
    assert err < ATOL, (
        f"the probability column differs from the model's probabilities (digits 0..9 in order) "
        f"by up to {err:.2e} {when}")


@pytest.mark.points(1)
@pytest.mark.tags("app")
def test_app_starts_with_an_uploader(student, exported, a7, app_runs):
    """Before any upload the app shows a file uploader for one image, no prediction and no error"""
    _, _, out, _ = _shared(student, exported, a7, app_runs)
    run = out["runs"][0]
    _no_exception(run, a7, "before any upload")
    uploaders = a7.of_type(run, "file_uploader")
    assert len(uploaders) == 1, f"expected one st.file_uploader; the page shows:\n{a7.describe(run)}"
    assert not uploaders[0]["multiple"], "the uploader takes several files; it should take one"
    types = uploaders[0]["types"]
    assert not types or ".png" in types, f"the uploader refuses PNG files (type={types})"
    assert not a7.of_type(run, "metric", "error"), (
        f"the app shows a prediction or an error before any upload:\n{a7.describe(run)}")


@pytest.mark.points(3)
@pytest.mark.tags("app")
def test_app_predicts_uploads(student, reference, exported, a7, app_runs):
    """After each upload the app shows the model's digit as st.metric('Prediction') and its 10 probabilities"""
    images, files, out, _ = _shared(student, exported, a7, app_runs)
    want = reference.probs_uint8(images)
    for i in GOOD:
        _check_prediction(out["runs"][i], want[i - 1], a7, f"after uploading {files[i - 1][0]}")


@pytest.mark.points(2)
@pytest.mark.tags("app")
def test_app_predicts_with_torchscript(student, reference, exported, a7):
    """With a TorchScript file as $DIGITS_MODEL the app shows the model's digit and probabilities"""
    images, _ = a7.hidden_digits(1, seed=24)
    out = student.probe("app_session", exported("torchscript"),
                        [("digit.png", a7.encode(images[0]), "image/png")])
    assert out["error"] is None, f"the app could not be run: {out['error']}"
    _check_prediction(out["runs"][1], reference.probs_uint8(images)[0], a7,
                      "after uploading digit.png with model.pt as the model")


@pytest.mark.points(2)
@pytest.mark.tags("app", "bad_input")
def test_app_bad_uploads(student, reference, exported, a7, app_runs):
    """A file that is not an image, or not 8x8, shows st.error (naming the size), no prediction, no traceback"""
    images, files, out, _ = _shared(student, exported, a7, app_runs)
    for i in BAD:
        run, name = out["runs"][i], files[i - 1][0]
        _no_exception(run, a7, f"after uploading {name}")
        errors = a7.of_type(run, "error")
        assert errors, f"no st.error after uploading {name}; the page shows:\n{a7.describe(run)}"
        assert not a7.of_type(run, "metric"), f"the app shows a prediction for {name}"
    big = " ".join(e["value"] for e in a7.of_type(out["runs"][BAD[1]], "error"))
    assert "16x16" in big, f"the error for a 16x16 image does not give its size: {big!r}"
    # a good file after the bad ones is classified as usual; clearing the uploader leaves
    # the page as it started
    _check_prediction(out["runs"][AGAIN], reference.probs_uint8(images)[3], a7,
                      "after a good file that follows bad ones")
    run = out["runs"][CLEAR]
    _no_exception(run, a7, "after the uploader was cleared")
    assert not a7.of_type(run, "metric", "error"), (
        f"the app still shows a prediction or an error after the uploader was cleared:\n"
        f"{a7.describe(run)}")


@pytest.mark.points(1)
@pytest.mark.tags("app")
def test_app_loads_the_model_once(student, exported, a7, app_runs):
    """The app loads the model with predict.load_model once (st.cache_resource), not at every rerun"""
    _, _, out, path = _shared(student, exported, a7, app_runs)
    loads = out["loads"]
    assert loads, "the app never called predict.load_model: load the model with it"
    assert len(loads) == 1, (
        f"predict.load_model was called {len(loads)} times in {len(out['runs'])} runs of the "
        "app; cache the loaded model with st.cache_resource")
    assert loads[0] == path, f"the app loaded {loads[0]!r}, not $DIGITS_MODEL ({path!r})"


@pytest.mark.points(1)
@pytest.mark.tags("app", "bad_input")
def test_app_missing_model(student, a7):
    """Without a model file the app shows st.error (run export.py), not a traceback"""
    path = student.probe("scratch_path", "missing.onnx")
    out = student.probe("app_session", path, [])
    assert out["error"] is None, f"the app could not be run: {out['error']}"
    (run,) = out["runs"]
    _no_exception(run, a7, "when $DIGITS_MODEL names a missing file")
    errors = " ".join(e["value"] for e in a7.of_type(run, "error"))
    assert errors, f"no st.error when the model file is missing; the page shows:\n{a7.describe(run)}"
    assert "export.py" in errors, f"the error does not say to run export.py: {errors!r}"
