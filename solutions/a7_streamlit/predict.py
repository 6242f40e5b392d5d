"""Part 2: inference with an exported model, without the model's Python code.

The contract that the app (``app.py``) and the graders rely on:

- images are 8x8 pixels, one channel, bright ink on a dark background as in the digits
  data: pixel values 0..255 in an image file or a ``uint8`` array stand for 0..1
  (divide by 255); a float array is taken as already in 0..1;
- :func:`load_image` turns the bytes of an uploaded file into an 8x8 ``uint8`` array;
- :func:`load_model` loads an exported model (ONNX or TorchScript) and returns a function
  from a float32 batch ``(N, 1, 8, 8)`` to logits ``(N, 10)``, as NumPy arrays;
- :func:`predict` returns class probabilities (softmax of the logits).

Bad input raises ``ValueError`` with a message that a user of the app can act on.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np

IMAGE_SIZE = 8
NUM_CLASSES = 10


def load_image(data: bytes) -> np.ndarray:
    """Decode an image file (PNG, JPEG, BMP...: whatever Pillow opens) into an array.

    Colour images are converted to one channel with Pillow's ``convert("L")``.

    Returns:
        uint8 array of shape (8, 8).

    Raises:
        ValueError: ``data`` is not an image Pillow can open (the message says so), or the
            image is not 8x8 pixels (the message gives its size as ``WxH``, e.g. ``28x28``).
    """
    # BEGIN SOLUTION
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"the file is not an image that can be read ({exc})") from exc
    if image.size != (IMAGE_SIZE, IMAGE_SIZE):
        width, height = image.size
        raise ValueError(f"the image is {width}x{height} pixels; upload an "
                         f"{IMAGE_SIZE}x{IMAGE_SIZE} image")
    return np.asarray(image.convert("L"), dtype=np.uint8)
    # END SOLUTION


def load_model(path: str | Path) -> Callable[[np.ndarray], np.ndarray]:
    """Load an exported model: ONNX when ``path`` ends in ``.onnx`` (with onnxruntime),
    TorchScript otherwise (``torch.jit.load``), on the CPU.

    Returns:
        a function ``f(x)`` taking a float32 array of shape (N, 1, 8, 8) (any N >= 1) and
        returning the logits as a float32 NumPy array of shape (N, 10). The model is loaded
        once, here; calling ``f`` only runs it.

    Raises:
        FileNotFoundError: no file at ``path``.
    """
    # BEGIN SOLUTION
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no exported model at {path}; run `python export.py` first")
    if path.suffix == ".onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name

        def run_onnx(x: np.ndarray) -> np.ndarray:
            return session.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})[0]

        return run_onnx
    import torch

    module = torch.jit.load(str(path), map_location="cpu").eval()

    def run_torchscript(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.as_tensor(x, dtype=torch.float32)).numpy()

    return run_torchscript
    # END SOLUTION


def to_batch(image: bytes | np.ndarray) -> np.ndarray:
    """The model's input for one image or a batch.

    Args:
        image: the bytes of an image file (see :func:`load_image`), or an array of shape
            (8, 8) (one image) or (N, 8, 8) (a batch): ``uint8`` values 0..255 are divided
            by 255, float values are used as they are.

    Returns:
        float32 array of shape (N, 1, 8, 8) (N = 1 for one image).

    Raises:
        ValueError: bytes that are not an 8x8 image (see :func:`load_image`), an array of
            another shape or dtype, or with NaN or infinite values.
    """
    # BEGIN SOLUTION
    if isinstance(image, (bytes, bytearray, memoryview)):
        image = load_image(bytes(image))
    array = np.asarray(image)
    if array.ndim not in (2, 3) or array.shape[-2:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"expected an image of shape (8, 8) or a batch (N, 8, 8), "
                         f"got shape {array.shape}")
    if array.dtype == np.uint8:
        x = array.astype(np.float32) / 255.0
    elif np.issubdtype(array.dtype, np.floating):
        x = array.astype(np.float32)
        if not np.isfinite(x).all():
            raise ValueError("the image has NaN or infinite values")
    else:
        raise ValueError(f"expected uint8 (0..255) or float (0..1) pixels, got {array.dtype}")
    return x.reshape(-1, 1, IMAGE_SIZE, IMAGE_SIZE)
    # END SOLUTION


def predict(model: Callable[[np.ndarray], np.ndarray], image: bytes | np.ndarray) -> np.ndarray:
    """Class probabilities of one image or a batch.

    Args:
        model: a function returned by :func:`load_model`.
        image: as for :func:`to_batch` (bytes of an image file, (8, 8) or (N, 8, 8)).

    Returns:
        float array (float32 or float64) of the softmax of the logits: shape (10,) for one
        image (bytes or an (8, 8) array), (N, 10) for a batch; every row sums to 1.

    Raises:
        ValueError: as :func:`to_batch`.
    """
    # BEGIN SOLUTION
    single = isinstance(image, (bytes, bytearray, memoryview)) or np.ndim(image) == 2
    logits = np.asarray(model(to_batch(image)), dtype=np.float64)
    logits -= logits.max(axis=1, keepdims=True)  # exp stays finite
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    return probs[0] if single else probs
    # END SOLUTION
