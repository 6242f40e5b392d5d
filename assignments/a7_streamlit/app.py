"""Part 3: the Streamlit app that serves the exported digits model.

    python export.py            # once: writes model.pt and model.onnx
    streamlit run app.py        # opens the app in your browser

What the page shows (the graders drive it with Streamlit's AppTest and in a browser):

- an ``st.file_uploader`` for one image (PNG, JPEG or BMP);
- after a good upload: ``st.metric("Prediction", "<digit>")`` and the class probabilities
  in a table, ``st.dataframe`` or ``st.table``, of 10 rows (digits 0..9 in order) with a
  column ``probability`` (a bar chart beside it is welcome);
- after a bad upload (not an image, not 8x8 pixels): ``st.error`` with the message of the
  ``ValueError`` from ``predict.py``, no prediction, and never a traceback.

The model file comes from the environment variable ``DIGITS_MODEL`` (an ``.onnx`` or a
TorchScript file), else ``model.onnx`` beside this file. It is loaded once per server
(``st.cache_resource``), not at every rerun.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import streamlit as st
from predict import load_model, predict

DEFAULT_MODEL = Path(__file__).resolve().parent / "model.onnx"


def model_path() -> Path:
    """``$DIGITS_MODEL`` if set, else ``model.onnx`` beside this file."""
    return Path(os.environ.get("DIGITS_MODEL") or DEFAULT_MODEL)


@st.cache_resource
def get_model(path: str) -> Callable[[np.ndarray], np.ndarray]:
    """The model at ``path``, loaded once per server process (cached by path)."""
    raise NotImplementedError("TODO: get_model")


def main() -> None:
    """The page: uploader, then the prediction and the probabilities, or an error."""
    st.title("Handwritten digit classifier")
    st.write("Upload an 8x8 grayscale image of a digit (bright ink on a dark background).")
    raise NotImplementedError("TODO: main")


if __name__ == "__main__":
    main()
