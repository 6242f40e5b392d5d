"""Tensors by value, grader -> worker only: the codec's $T tag and the worker's decoder."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch

from autograder.errors import CodecError
from autograder.sandbox import codec
from autograder.sandbox.codec import TensorSpec
from autograder.sandbox.worker import make_tensor


def to_worker(value):
    return codec.decode(codec.encode(value), on_tensor=make_tensor)


@pytest.mark.parametrize("dtype, np_dtype", [
    ("float32", np.float32), ("float64", np.float64), ("int64", np.int64), ("bool", np.bool_),
    ("float16", np.float16), ("complex64", np.complex64), ("uint8", np.uint8),
])
def test_round_trip_builds_a_tensor_of_the_dtype(dtype, np_dtype):
    arr = (np.arange(6).reshape(2, 3) % 2).astype(np_dtype)
    t = to_worker({"x": TensorSpec.of(arr, dtype)})["x"]
    assert type(t) is torch.Tensor and str(t.dtype) == f"torch.{dtype}"
    assert tuple(t.shape) == (2, 3) and not t.requires_grad
    np.testing.assert_array_equal(t.numpy(), arr)


def test_bfloat16_and_requires_grad():
    spec = TensorSpec.of([[1.5, 2.0]], "bfloat16", requires_grad=True)
    assert spec.array.dtype == np.float32  # numpy has no bfloat16: cast in the worker
    t = to_worker(spec)
    assert t.dtype == torch.bfloat16 and t.requires_grad and t.is_leaf
    assert t.float().tolist() == [[1.5, 2.0]]


def test_dtype_defaults_to_the_array_and_accepts_torch_dtypes():
    assert TensorSpec.of(np.zeros(2, np.int32)).dtype == "int32"
    assert TensorSpec.of(np.zeros(2), torch.float32).dtype == "float32"
    with pytest.raises(CodecError, match="no torch twin"):
        TensorSpec.of(np.zeros(2, np.uint32))


def test_spec_copies_its_array():
    arr = np.zeros(3)
    spec = TensorSpec.of(arr)
    arr[0] = 5
    assert spec.array[0] == 0


def test_grader_torch_tensors_keep_dtype_grad_and_device():
    src = torch.ones(2, 2, dtype=torch.bfloat16, requires_grad=True)
    spec = TensorSpec.from_torch(src)
    assert (spec.dtype, spec.requires_grad, spec.device) == ("bfloat16", True, "cpu")
    # Without on_torch a tensor goes as its array (the worker's replies); with it, as a tensor.
    assert type(codec.decode(codec.encode(torch.ones(2)))) is np.ndarray
    sent = codec.encode([torch.ones(2)], on_torch=TensorSpec.from_torch)
    assert type(codec.decode(sent, on_tensor=make_tensor)[0]) is torch.Tensor


@pytest.mark.parametrize("kwargs, why", [
    ({"dtype": "object"}, "dtype 'object' is not allowed"),
    ({"dtype": "int64", "requires_grad": True}, "floating or complex"),
    ({"device": "tpu"}, "device 'tpu' is not allowed"),
    ({"device": "cuda:0; rm"}, "device"),
    ({"requires_grad": 1}, "True or False"),
])
def test_bad_specs_are_refused_in_the_grader(kwargs, why):
    with pytest.raises(CodecError, match=why):
        TensorSpec.of(np.zeros(2), **kwargs)


def test_grader_decoder_refuses_tensor_tags():
    """A worker's reply can never make the grader build a tensor (or anything else)."""
    payload = codec.encode({"ok": TensorSpec.of(np.zeros(2)), "id": 1})
    with pytest.raises(CodecError, match="only the grader sends tensors"):
        codec.decode(payload)


def _forge(tree, buffers):
    text = json.dumps({"v": tree, "b": [len(b) for b in buffers]}).encode()
    return struct.pack(">I", len(text)) + text + b"".join(buffers)


@pytest.mark.parametrize("body, why", [
    ([0, "pickle", False, "cpu"], "not allowed"),
    ([0, "float64", "yes", "cpu"], "True or False"),
    ([0, "float64", False, "/dev/nvidia0"], "device"),
    ([0, "float32", False, "cpu"], "travels as float32, not float64"),
    ([0, "float64", False], "malformed tag"),
    ([5, "float64", False, "cpu"], "bad buffer reference"),
])
def test_hostile_tensor_payloads_are_refused(body, why):
    buf = codec.npy_bytes(np.zeros(3))
    with pytest.raises(CodecError, match=why):
        codec.decode(_forge({"$T": body}, [buf]), on_tensor=make_tensor)


def test_tensor_with_a_lying_shape_is_refused():
    buf = bytearray(codec.npy_bytes(np.zeros(3)))
    buf[:] = bytes(buf).replace(b"(3,)", b"(9,)")
    with pytest.raises(CodecError, match="does not match"):
        codec.decode(_forge({"$T": [0, "float64", False, "cpu"]}, [bytes(buf)]),
                     on_tensor=make_tensor)


def test_cuda_tensor_without_cuda_says_how_to_mark_the_test(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(CodecError, match="no CUDA.*pytest.mark.gpu"):
        to_worker(TensorSpec.of(np.zeros(2), device="cuda"))


@pytest.mark.parametrize("value", [np.array(2.5), np.float32(2.5), 2.5,
                                   torch.tensor(2.5), torch.tensor(2.5).T])
def test_a_scalar_arrives_as_a_0d_tensor(value):
    """A loss's upstream gradient is 0-d: a (1,) tensor would broadcast the wrong way."""
    t = to_worker(TensorSpec.of(value, "float64", requires_grad=True))
    assert t.shape == () and t.dim() == 0 and t.requires_grad and float(t) == 2.5
