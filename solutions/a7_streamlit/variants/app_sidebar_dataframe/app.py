"""The app laid out differently: the uploader in the sidebar, the probabilities in a pandas
DataFrame shown with st.dataframe, the model path read inside the cached loader."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import predict
import streamlit as st

st.set_page_config(page_title="Digits", layout="wide")


@st.cache_resource(show_spinner="Loading the model...")
def get_model(path):
    return predict.load_model(path)


def main():
    st.header("Digit recognizer")
    with st.sidebar:
        st.subheader("Input")
        upload = st.file_uploader("Upload an 8x8 PNG/JPEG/BMP image", type=["png", "jpg", "bmp"])
    path = os.environ.get("DIGITS_MODEL", str(Path(__file__).parent / "model.onnx"))
    if not os.path.exists(path):
        st.error(f"Model file {path} not found. Run `python export.py` first.")
        st.stop()
    model = get_model(path)
    if not upload:
        st.info("Waiting for an image in the sidebar.")
        return
    data = upload.read()
    try:
        probabilities = predict.predict(model, data)
    except ValueError as err:
        st.error(str(err))
        st.stop()
    frame = pd.DataFrame({"probability": probabilities}, index=pd.RangeIndex(10, name="digit"))
    st.metric(label="Prediction", value=f"{np.argmax(probabilities)}")
    st.dataframe(frame)
    st.bar_chart(frame)


main()
