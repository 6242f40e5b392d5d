"""Assignment 7's own probes: what the graders run next to your code, and the yardstick of
the latency test.

They run in the worker (the process that runs your code) and return plain data: the
elements your app shows (read with Streamlit's ``AppTest``), what a real browser shows of
it (text and screenshots), the outputs of your exported files. The yardstick runs in a
sibling worker that never loads your code. You can read them and call them yourself to
see what the graders look at. Nothing here is secret.

torch, onnxruntime and Streamlit's test API are bound here at import, before any
submission code runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import streamlit.logger as _st_logger
import torch
import torch.nn.functional as F
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Block as _Block
from torch import nn

from autograder.probes import probe

_InferenceSession = ort.InferenceSession
_jit_load = torch.jit.load
_softmax = F.softmax
CHROMIUM = "/usr/bin/chromium"
MAX_FILE_BYTES = 32 * 1024 * 1024
# What the browser looks for once an upload is answered (Streamlit's own test ids).
RESULT_SELECTOR = ('[data-testid="stMetric"], [data-testid="stAlert"], '
                   '[data-testid="stException"]')


def _here() -> Path:
    """The submission's folder in the worker: where the official ``models.py`` lies."""
    import models  # the official support file, found by the worker's own import finder

    return Path(models.__file__).resolve().parent


@probe("support_path")
def support_path(name: str) -> str:
    """The path of the support file ``name`` (``digits_cnn.pt``) in the worker."""
    if name not in ("digits_cnn.pt", "models.py"):
        raise ValueError(f"not a support file of A7: {name!r}")
    return str(_here() / name)


# ---------------------------------------------------------------- files in the worker


@probe("scratch_path")
def scratch_path(name: str) -> str:
    """A path ``name`` in a fresh folder of the worker's private temp directory."""
    if "/" in name or name in ("", ".", ".."):
        raise ValueError(f"scratch_path takes a file name, got {name!r}")
    return str(Path(tempfile.mkdtemp(prefix="a7-")) / name)


@probe("file_info")
def file_info(path: str) -> dict[str, Any]:
    """Whether ``path`` is a file and its size in bytes (0 when missing)."""
    p = Path(path)
    return {"exists": p.is_file(), "size": p.stat().st_size if p.is_file() else 0}


@probe("write_checkpoint")
def write_checkpoint(path: str, model_name: str) -> None:
    """The official checkpoint ``digits_cnn.pt`` with its ``"model"`` entry replaced by
    ``model_name``, written to ``path`` (to see how a loader treats an unknown class)."""
    checkpoint = torch.load(_here() / "digits_cnn.pt", map_location="cpu", weights_only=True)
    checkpoint["model"] = model_name
    torch.save(checkpoint, path)


@probe("write_file")
def write_file(name: str, data: bytes) -> str:
    """Writes ``data`` (a model file the graders exported from the official checkpoint with
    their own code, see ``reference_export``) to ``name`` in a fresh folder of the worker's
    private temp directory; returns its path."""
    path = scratch_path(name)
    Path(path).write_bytes(data)
    return path


@probe("reference_export")
def reference_export(kind: str, path: str) -> None:
    """The official checkpoint exported by the graders' own code (``torch.jit.script`` for
    ``kind="torchscript"``, torch's ONNX exporter for ``kind="onnx"``), written to ``path``.
    The graders make the same files once per grading in their own process and send them
    with ``write_file``: the app and ``predict.load_model`` are tested on these files, so a
    bug in your ``export.py`` costs only the export tests."""
    import models  # the official support file

    checkpoint = torch.load(_here() / "digits_cnn.pt", map_location="cpu", weights_only=True)
    model = models.MODEL_CLASSES[checkpoint["model"]](**checkpoint["config"])
    model.load_state_dict(checkpoint["state_dict"])
    model.eval()
    with warnings.catch_warnings():  # torch's deprecation notes are not the student's output
        warnings.simplefilter("ignore")
        _export(model, kind, path)


def _export(model: nn.Module, kind: str, path: str) -> None:
    if kind == "torchscript":
        torch.jit.script(model).save(path)
    elif kind == "onnx":
        torch.onnx.export(model, (torch.zeros(2, 1, 8, 8),), path, dynamo=False,
                          input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
    else:
        raise ValueError(f"kind must be 'torchscript' or 'onnx', got {kind!r}")


# ---------------------------------------------------------------- exported files


@probe("onnx_run")
def onnx_run(path: str, batches: list[np.ndarray]) -> dict[str, Any]:
    """The ONNX file at ``path``: ``onnx.checker``'s verdict, its inputs and outputs (name
    and shape, a dynamic dimension as its name), and onnxruntime's first output for each
    float32 batch (or the error it raised, as text)."""
    import onnx

    try:
        onnx.checker.check_model(path)
        checker = "ok"
    except Exception as exc:  # the verdict is data for the grader
        checker = f"{type(exc).__name__}: {exc}"[:2000]
    session = _InferenceSession(path, providers=["CPUExecutionProvider"])

    def dims(args: Any) -> list[dict[str, Any]]:
        return [{"name": a.name, "shape": [d if isinstance(d, int) else str(d) for d in a.shape]}
                for a in args]

    outputs: list[Any] = []
    name = session.get_inputs()[0].name
    for x in batches:
        try:
            outputs.append(np.asarray(session.run(None, {name: np.asarray(x, np.float32)})[0]))
        except Exception as exc:
            outputs.append(f"{type(exc).__name__}: {exc}"[:2000])
    return {"checker": checker, "inputs": dims(session.get_inputs()),
            "outputs": dims(session.get_outputs()), "results": outputs}


@probe("torchscript_run")
def torchscript_run(path: str, batches: list[np.ndarray]) -> dict[str, Any]:
    """The TorchScript file at ``path`` loaded with ``torch.jit.load`` (on the CPU, in
    eval mode): its output for each float32 batch (or the error, as text)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = _jit_load(path, map_location="cpu")
    module.eval()
    results: list[Any] = []
    for x in batches:
        try:
            with torch.inference_mode():
                results.append(module(torch.as_tensor(np.asarray(x, np.float32))))
        except Exception as exc:
            results.append(f"{type(exc).__name__}: {exc}"[:2000])
    return {"results": results}


@probe("modes")
def modes(model: Any) -> dict[str, bool]:
    """``module.training`` of the model and of each of its submodules, by name."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"a {type(model).__qualname__} is not a torch.nn.Module")
    return {name or "<model>": bool(m.training) for name, m in nn.Module.named_modules(model)}


@probe("module_logits")
def module_logits(model: Any, x: np.ndarray) -> np.ndarray:
    """``model(x)`` for a float32 batch, without gradients, in the model's current mode."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"a {type(model).__qualname__} is not a torch.nn.Module")
    with torch.no_grad():
        out = model(torch.as_tensor(np.asarray(x, np.float32)))
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"the model returned a {type(out).__qualname__}, expected a tensor")
    return out.numpy()


# ---------------------------------------------------------------- the app, with AppTest


def _element(el: Any) -> dict[str, Any]:
    """An element of AppTest's tree as plain data."""
    kind = str(el.type)
    out: dict[str, Any] = {"type": kind}
    if kind in ("dataframe", "table"):
        frame = el.value
        out["columns"] = {str(c): [v.item() if hasattr(v, "item") else v
                                   for v in frame[c].tolist()] for c in frame.columns}
        out["index"] = [str(i) for i in frame.index.tolist()]
    elif kind == "metric":
        out.update(label=str(el.label), value=str(el.value))
    elif kind == "exception":
        out.update(message=str(el.message), traceback=[str(s) for s in el.stack_trace][-20:])
    elif kind == "file_uploader":
        out.update(label=str(el.label), types=[str(t) for t in el.allowed_type],
                   multiple=bool(el.accept_multiple_files))
    elif kind in ("error", "warning", "info", "success", "markdown", "title", "header",
                  "subheader", "caption", "text", "code", "latex"):
        out["value"] = str(el.value)
    return out


def _flatten(node: Any) -> Iterator[Any]:
    """The elements below ``node``, in page order (layout blocks opened)."""
    for child in getattr(node, "children", {}).values():
        if isinstance(child, _Block):
            yield from _flatten(child)
        else:
            yield child


def _snapshot(at: Any) -> list[dict[str, Any]]:
    return [_element(el) for el in _flatten(at._tree)]


@contextlib.contextmanager
def _counting_loads() -> Iterator[list[str]]:
    """``predict.load_model`` wrapped to record each call while the app runs."""
    import predict

    calls: list[str] = []
    original = predict.load_model

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(str(args[0]) if args else str(kwargs))
        return original(*args, **kwargs)

    predict.load_model = counted
    try:
        yield calls
    finally:
        predict.load_model = original


@probe("app_session")
def app_session(model_path: str, uploads: list[Any], timeout: float = 30.0) -> dict[str, Any]:
    """Runs ``app.py`` with ``AppTest`` (``DIGITS_MODEL=model_path``): once with nothing
    uploaded, then once per entry of ``uploads``, a ``(filename, bytes, mime type)`` to
    upload in place of the previous file, or ``None`` to clear the uploader. Returns the
    elements shown after each run (``runs``; each element's type and what it shows), the
    calls of ``predict.load_model`` during the session (``loads``), and the error that
    stopped the session early (``error``; None when it ran to the end)."""
    os.environ["DIGITS_MODEL"] = model_path
    runs: list[list[dict[str, Any]]] = []
    error = None
    # AppTest runs the script outside a server: Streamlit's warnings about that are noise
    _st_logger.set_log_level("error")
    with _counting_loads() as loads:
        at = AppTest.from_file(str(_here() / "app.py"), default_timeout=timeout)
        try:
            at.run()
            runs.append(_snapshot(at))
            for upload in uploads:
                if not at.file_uploader:
                    error = "the app shows no st.file_uploader"
                    break
                uploader = at.file_uploader[0]
                if upload is None:
                    uploader.clear()
                else:
                    name, data, mime = upload
                    uploader.set_value((str(name), bytes(data), str(mime)))
                at.run()
                runs.append(_snapshot(at))
        except Exception as exc:  # AppTest's own failures (a run past the timeout...)
            error = f"{type(exc).__name__}: {exc}"[:2000]
    return {"runs": runs, "loads": list(loads), "error": error}


# ---------------------------------------------------------------- the app, in a browser


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, server: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit run exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"the app did not answer {url}/_stcore/health within {timeout:.0f} s")


def _settled_text(page: Any, selector: str, timeout_ms: float) -> None:
    """Wait for ``selector``, then until the app stops running (Streamlit's status widget
    gone and the text unchanged for half a second)."""
    page.wait_for_selector(selector, timeout=timeout_ms)
    deadline = time.monotonic() + timeout_ms / 1000
    last = None
    while time.monotonic() < deadline:
        text = page.locator("body").inner_text()
        running = page.locator('[data-testid="stStatusWidget"]').count() > 0
        if text == last and not running:
            return
        last = text
        time.sleep(0.5)


@probe("browser_session")
def browser_session(model_path: str, uploads: list[Any], timeout: float = 60.0) -> dict[str, Any]:
    """Starts ``streamlit run app.py`` on the worker's loopback (``DIGITS_MODEL=model_path``)
    and opens it in headless Chromium (``/usr/bin/chromium``) through Playwright. For each
    ``(filename, bytes, mime type)`` of ``uploads``: a fresh page, the file set on the
    page's file input, then what the page shows once the app has answered: the text of the
    page, of each ``st.metric``, of each alert (``st.error``...) and of each exception
    box, and a PNG screenshot of the page. Also returns the server's log (its last 4000
    characters)."""
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        raise FileNotFoundError(f"{CHROMIUM} is missing (Debian's chromium package)")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = Path(tempfile.mkdtemp(prefix="a7-streamlit-")) / "server.log"
    env = {**os.environ, "DIGITS_MODEL": model_path, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    cmd = [sys.executable, "-m", "streamlit", "run", str(_here() / "app.py"),
           "--server.headless", "true", "--server.address", "127.0.0.1",
           "--server.port", str(port), "--server.fileWatcherType", "none",
           "--browser.gatherUsageStats", "false", "--global.developmentMode", "false"]
    pages: list[dict[str, Any]] = []
    with open(log, "wb") as out:
        server = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=_here(),
                                  env=env, start_new_session=True)
    try:
        _wait_healthy(url, server, timeout)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True,
                args=["--disable-dev-shm-usage", "--disable-gpu", "--no-zygote",
                      "--disable-extensions", "--mute-audio"])
            try:
                for name, data, mime in uploads:
                    page = browser.new_page(viewport={"width": 1000, "height": 900})
                    page.goto(url, timeout=timeout * 1000)
                    page.wait_for_selector('input[type="file"]', state="attached",
                                           timeout=timeout * 1000)
                    page.locator('input[type="file"]').first.set_input_files(
                        files=[{"name": str(name), "mimeType": str(mime), "buffer": bytes(data)}])
                    _settled_text(page, RESULT_SELECTOR, timeout * 1000)

                    def texts(selector: str, page: Any = page) -> list[str]:
                        return [e.inner_text() for e in page.query_selector_all(selector)]

                    pages.append({
                        "text": page.locator("body").inner_text(),
                        "metrics": texts('[data-testid="stMetric"]'),
                        "alerts": texts('[data-testid="stAlert"]'),
                        "exceptions": texts('[data-testid="stException"]'),
                        "screenshot": page.screenshot(full_page=True),
                    })
                    page.close()
            finally:
                browser.close()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, 15)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, 9)
            server.wait(timeout=10)
        server_log = log.read_bytes().decode("utf-8", "replace")[-4000:]
        shutil.rmtree(log.parent, ignore_errors=True)
    return {"pages": pages, "server_log": server_log}


# ---------------------------------------------------------------- the yardstick


class _EagerCNN(nn.Module):
    """A network of the size of ``SmallCNN()`` written with torch's built-in modules."""

    def __init__(self) -> None:
        super().__init__()

        def block(cin: int, cout: int, stride: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
                    nn.BatchNorm2d(cout), nn.ReLU(),
                    nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                    nn.ReLU()]

        self.net = nn.Sequential(*block(1, 8, 1), *block(8, 16, 2), nn.AdaptiveAvgPool2d(1),
                                 nn.Flatten(), nn.Linear(16, 10))


_YARDSTICK: list[nn.Module] = []


@probe("eager_predict_yardstick")
def eager_predict_yardstick(images: np.ndarray) -> np.ndarray:
    """Class probabilities of a uint8 image (8, 8) or batch (N, 8, 8) from an eager model of
    the size of ``SmallCNN()`` in eval mode: the latency tests' yardstick."""
    if not _YARDSTICK:
        torch.manual_seed(0)
        _YARDSTICK.append(_EagerCNN().eval())
    images = np.asarray(images)
    x = torch.as_tensor(images, dtype=torch.float32).div_(255.0).reshape(-1, 1, 8, 8)
    with torch.inference_mode():
        probs = _softmax(_YARDSTICK[0].net(x), dim=1).numpy()
    return probs[0] if images.ndim == 2 else probs
