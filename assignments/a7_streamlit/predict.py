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
    raise NotImplementedError("TODO: load_image")


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
    raise NotImplementedError("TODO: load_model")


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
    raise NotImplementedError("TODO: to_batch")


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
    raise NotImplementedError("TODO: predict")
