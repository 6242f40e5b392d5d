"""Hidden: the app served by ``streamlit run`` and used in a real browser.

The probe ``browser_session`` starts ``streamlit run app.py`` in the worker, on the
worker's own loopback (``[sandbox] loopback``), and drives Debian's Chromium with
Playwright: it uploads a file and returns what the page shows (its text, the metrics,
alerts and exception boxes) and a screenshot. Verdicts are made here; screenshots are
saved for staff beside results.json (``screenshots/``). Where the grading machine has no
``/usr/bin/chromium`` (or no Playwright) the test is skipped with that reason; the harness
treats a skipped hidden test as its own failure (exit 2, every test at 0 with a harness
error to regrade), so students never lose these points to the machine.
"""

import importlib.util
import os

import numpy as np
import pytest

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.visibility("after_published"),
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason=f"no browser at {CHROMIUM} on the grading machine (Debian's "
                              "chromium package); the browser test cannot run here"),
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None,
                       reason="Playwright is not installed on the grading machine (the a7 "
                              "extra); the browser test cannot run here"),
]


@pytest.mark.points(3)
@pytest.mark.tags("browser")
@pytest.mark.call_timeout(240)
def test_app_in_a_browser(student, reference, a7, exported, save_screenshot):
    """In Chromium, the served app shows the model's digit for an uploaded image and an error, not a traceback, for a bad file"""
    images, _ = a7.hidden_digits(1, seed=31)
    out = student.probe("browser_session", exported("onnx"), [
        ("digit.png", a7.encode(images[0]), "image/png"),
        ("notes.png", b"these are my notes, not a picture", "image/png"),
    ])
    good, bad = out["pages"]
    shots = [save_screenshot(good["screenshot"], "digit"), save_screenshot(bad["screenshot"], "notes")]
    print(f"screenshots: {', '.join(str(s) for s in shots)}")
    log = out["server_log"][-1500:]
    digit = int(np.argmax(reference.probs_uint8(images)[0]))
    for page, name in ((good, "digit.png"), (bad, "notes.png")):
        assert not page["exceptions"] and "Traceback" not in page["text"], (
            f"the page shows a traceback after uploading {name}:\n{page['text'][-1500:]}\n"
            f"server log:\n{log}")
    metrics = [m.split() for m in good["metrics"]]
    shown = [m[-1] for m in metrics if m and m[0] == "Prediction"]
    assert shown == [str(digit)], (
        f"after uploading a digit the page shows the metrics {good['metrics']} and the alerts "
        f"{good['alerts']}, expected 'Prediction' {digit}; page text:\n{good['text'][-1500:]}")
    assert bad["alerts"] and not bad["metrics"], (
        f"after uploading a file that is not an image the page shows the alerts {bad['alerts']} "
        f"and the metrics {bad['metrics']}, expected an error and no prediction")
