"""The value codec between grader and worker: JSON for structure, .npy for arrays.

Never pickles. The grader decodes everything the worker sends with this module, so it
is the trust boundary: strict types, a dtype allowlist, and limits on bytes, depth and
item count, checked before anything large is allocated.

Wire layout of one encoded value (the payload of a frame):
    4-byte big-endian JSON length | JSON text | buffer 0 | buffer 1 | ...
The JSON is ``{"v": tree, "b": [len0, len1, ...]}``. In ``tree`` every JSON object is a
tag: ``{"$t": [...]}`` tuple, ``{"$d": {...}}`` dict, ``{"$a": i}`` array in buffer i,
``{"$s": i}`` numpy scalar, ``{"$y": i}`` bytes, ``{"$h": [id, type]}`` worker handle,
``{"$T": [i, dtype, requires_grad, device]}`` a tensor the grader sends (array in buffer i;
only the worker accepts it and builds a ``torch.Tensor``: the grader's decoder refuses it,
so torch never runs on anything the worker sent).
"""

from __future__ import annotations

import itertools
import json
import math
import re
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from autograder import config
from autograder.errors import CodecError

ALLOWED_KINDS = frozenset("biufc")  # bool, int, uint, float, complex


@dataclass(frozen=True)
class WireLimits:
    """Bounds on one encoded value (a request or a reply), checked by both sides before
    anything large is allocated. Not the assignment's ``[limits]``
    (:class:`autograder.config.Limits`): of those only ``message_mb`` reaches the wire,
    as ``max_bytes`` (see :meth:`for_assignment`); the rest are the codec's own."""

    max_bytes: int = config.Limits().message_bytes
    # Parsed JSON costs ~25x its size in Python objects; arrays travel in buffers instead.
    max_json_bytes: int = 8 * 1024 * 1024
    max_depth: int = 32
    max_items: int = 1_000_000
    max_array_dims: int = 32

    @classmethod
    def for_assignment(cls, limits: config.Limits) -> WireLimits:
        """The wire bounds of a grading under the assignment's ``[limits]``."""
        return cls(max_bytes=limits.message_bytes)


DEFAULT_LIMITS = WireLimits()
SIZE_LIMIT = "(the assignment's message_mb limit)"


@dataclass(frozen=True)
class Handle:
    """Reference to an object that stays in the worker."""

    id: int
    type_name: str


OnOpaque = Callable[[Any], Handle]
OnHandle = Callable[[Handle], Any]

# torch dtype names a TensorSpec may ask for, and the numpy dtype its array travels in
# (numpy has no bfloat16: such tensors travel as float32 and are cast in the worker).
TORCH_DTYPES: dict[str, str] = {
    "bool": "bool", "uint8": "uint8", "int8": "int8", "int16": "int16", "int32": "int32",
    "int64": "int64", "float16": "float16", "bfloat16": "float32", "float32": "float32",
    "float64": "float64", "complex64": "complex64", "complex128": "complex128",
}
_GRAD_DTYPES = ("float16", "bfloat16", "float32", "float64", "complex64", "complex128")
_DEVICE = re.compile(r"cpu|cuda(?::\d{1,2})?")


@dataclass(frozen=True, eq=False)
class TensorSpec:
    """A tensor sent by value from the grader: the worker receives ``torch.Tensor``.

    Built with ``student.tensor(array, dtype=..., requires_grad=..., device=...)``; the
    array is copied, so later changes to it in the test do not change what is sent.
    """

    array: np.ndarray
    dtype: str  # a key of TORCH_DTYPES
    requires_grad: bool = False
    device: str = "cpu"  # "cpu", "cuda" or "cuda:N"

    def __post_init__(self) -> None:
        check_tensor_fields(self.array, self.dtype, self.requires_grad, self.device)

    @classmethod
    def of(cls, array: Any, dtype: Any = None, requires_grad: bool = False,
           device: str = "cpu") -> TensorSpec:
        """From an array-like (or a torch tensor of the grader's), ``dtype`` a torch dtype,
        its name, or None for the array's own dtype."""
        if _is_torch_tensor(array):
            name = dtype_name(array.dtype)
            arr = _torch_to_numpy(array)
            if arr is None:
                raise CodecError(f"a tensor of dtype {name} on {array.device} cannot be sent")
            arr = np.array(arr)  # a copy, as for arrays
            dtype = name if dtype is None else dtype
        else:
            arr = np.array(array)  # a copy: the test may change its array afterwards
        if dtype is None:
            dtype = arr.dtype.name
            if dtype not in TORCH_DTYPES:
                raise CodecError(f"an array of dtype {arr.dtype} has no torch twin; pass "
                                 f"dtype=, one of {', '.join(TORCH_DTYPES)}")
        name = dtype_name(dtype)
        arr = arr.astype(TORCH_DTYPES.get(name, arr.dtype.name), copy=False) \
            if arr.dtype.kind in ALLOWED_KINDS else arr
        # ascontiguousarray makes a 0-d array 1-d: a scalar tensor must stay 0-d
        return cls(np.ascontiguousarray(arr).reshape(arr.shape), name, requires_grad, device)

    @classmethod
    def from_torch(cls, tensor: Any) -> TensorSpec:
        """A torch tensor of the grader's, sent as a tensor (dtype, requires_grad, device
        kept): the encoder's ``on_torch`` on the grader side."""
        device = tensor.device.type if tensor.device.index is None else str(tensor.device)
        return cls.of(tensor, requires_grad=bool(tensor.requires_grad), device=device)

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"tensor(shape={self.array.shape}, dtype={self.dtype}{grad}, device={self.device!r})"


def check_tensor_fields(array: Any, dtype: Any, requires_grad: Any, device: Any) -> None:
    """CodecError unless these describe a tensor the worker may build (both sides check)."""
    check_tensor_args(dtype, requires_grad, device)
    if type(array) is not np.ndarray or array.dtype.kind not in ALLOWED_KINDS:
        raise CodecError(f"a tensor's data must be a numeric or bool numpy array, not "
                         f"{type(array).__qualname__}")
    if array.dtype != np.dtype(TORCH_DTYPES[dtype]):
        raise CodecError(f"a {dtype} tensor travels as {TORCH_DTYPES[dtype]}, not {array.dtype}")


def dtype_name(dtype: Any) -> str:
    """A torch dtype (``torch.float32``) or its name, as a name (``"float32"``)."""
    return dtype if isinstance(dtype, str) else str(dtype).removeprefix("torch.")


def check_tensor_args(dtype: Any, requires_grad: Any, device: Any) -> None:
    """CodecError unless dtype (a name), requires_grad and device are ones a tensor may
    have: what a test asks for, apart from its array."""
    if type(dtype) is not str or dtype not in TORCH_DTYPES:
        raise CodecError(f"tensor dtype {dtype!r} is not allowed; use one of "
                         f"{', '.join(TORCH_DTYPES)}")
    if type(requires_grad) is not bool:
        raise CodecError(f"requires_grad={requires_grad!r}: use True or False")
    if requires_grad and dtype not in _GRAD_DTYPES:
        raise CodecError(f"requires_grad=True needs a floating or complex dtype, not {dtype}")
    if type(device) is not str or not _DEVICE.fullmatch(device):
        raise CodecError(f"tensor device {device!r} is not allowed; use 'cpu', 'cuda' or 'cuda:N'")


OnTensor = Callable[[TensorSpec], Any]


def _refuse_opaque(value: Any) -> Handle:
    raise CodecError(
        f"cannot send a {type(value).__qualname__} across the sandbox boundary; "
        "send plain data (numbers, strings, lists, dicts, numpy arrays) or a handle"
    )


def _torch_to_numpy(value: Any) -> np.ndarray | None:
    torch = sys.modules.get("torch")  # only if the worker already imported it
    if torch is None or not isinstance(value, torch.Tensor):
        return None
    try:
        t = value.detach().cpu()
        if t.dtype == torch.bfloat16:
            t = t.float()  # numpy has no bfloat16
        return np.asarray(t.resolve_conj().resolve_neg().numpy())
    except Exception:  # sparse, meta, quantized, float8...: no numpy twin, stays a handle
        return None


_NPY_MAGIC = b"\x93NUMPY"
# The exact header numpy writes, nothing else: parsing it needs no literal_eval, and any
# other dtype (objects, records, strings) cannot even be spelled.
_NPY_HEADER = re.compile(
    rb"\{'descr': '([<>|=][biufc](?:1|2|4|8|16|32))', 'fortran_order': (True|False), "
    rb"'shape': \(((?:\d{1,19}, )*(?:\d{1,19},?)?)\), \} *\n")


def npy_bytes(arr: np.ndarray) -> bytes:
    """``arr`` in the .npy format (version 1.0, C order), as numpy.save writes it."""
    header = f"{{'descr': {arr.dtype.str!r}, 'fortran_order': False, 'shape': {arr.shape!r}, }}"
    pad = -(len(_NPY_MAGIC) + 4 + len(header) + 1) % 64
    head = (header + " " * pad + "\n").encode("latin1")
    if len(head) > 65535:
        raise CodecError(f"array of {arr.ndim} dimensions has too long a header")
    return b"".join([_NPY_MAGIC, b"\x01\x00", struct.pack("<H", len(head)), head,
                     arr.tobytes(order="C")])


def parse_npy_header(data: memoryview) -> tuple[tuple[int, ...], bool, np.dtype[Any], int]:
    """(shape, fortran_order, dtype, data offset) of a .npy buffer; CodecError otherwise."""
    if len(data) < 10 or bytes(data[:6]) != _NPY_MAGIC:
        raise CodecError("malformed array: no .npy magic")
    major = data[6]
    if major == 1:
        (hlen,), start = struct.unpack("<H", data[8:10]), 10
    elif major in (2, 3) and len(data) >= 12:
        (hlen,), start = struct.unpack("<I", data[8:12]), 12
    else:
        raise CodecError(f"malformed array: unsupported .npy version {major}")
    if hlen > 65536 or start + hlen > len(data):
        raise CodecError("malformed array: bad header length")
    m = _NPY_HEADER.fullmatch(bytes(data[start : start + hlen]))
    if m is None:
        raise CodecError("malformed array header")
    shape = tuple(int(n) for n in m.group(3).replace(b",", b" ").split())
    try:
        dtype = np.dtype(m.group(1).decode())
    except TypeError as exc:  # e.g. '<b8': a kind/size pair numpy does not know
        raise CodecError(f"array dtype {m.group(1)!r} is not allowed") from exc
    return shape, m.group(2) == b"True", dtype, start + hlen


def _plain_container(value: Any) -> list[Any] | tuple[Any, ...] | dict[str, Any] | None:
    try:
        if isinstance(value, dict):
            items = list(dict.items(value))
            return dict(items) if all(type(k) is str for k, _ in items) else None
        if isinstance(value, tuple):
            return tuple(tuple.__iter__(value))
        return list(list.__iter__(value))
    except Exception:  # a container that breaks while being copied stays a handle
        return None


class _Encoder:
    def __init__(self, limits: WireLimits, on_opaque: OnOpaque,
                 on_torch: Callable[[Any], Any] | None = None) -> None:
        self.limits = limits
        self.on_opaque = on_opaque
        self.on_torch = on_torch
        self.buffers: list[bytes] = []
        self.items = 0
        self.size = 0

    def _buffer(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self.limits.max_bytes:
            raise CodecError(f"message exceeds {self.limits.max_bytes} bytes {SIZE_LIMIT}")
        self.buffers.append(data)
        return len(self.buffers) - 1

    def _array(self, arr: np.ndarray) -> int:
        if arr.dtype.kind not in ALLOWED_KINDS:
            raise CodecError(
                f"array dtype {arr.dtype} cannot be sent; use a numeric or bool dtype"
            )
        if arr.ndim > self.limits.max_array_dims:
            raise CodecError(f"array with {arr.ndim} dimensions exceeds {self.limits.max_array_dims}")
        return self._buffer(npy_bytes(arr))

    def encode(self, value: Any, depth: int = 0) -> Any:
        self.items += 1
        if self.items > self.limits.max_items:
            raise CodecError(f"message has more than {self.limits.max_items} items")
        if depth > self.limits.max_depth:
            raise CodecError(f"message nests deeper than {self.limits.max_depth} levels")
        t = type(value)  # exact types: subclasses could override comparisons
        if value is None or t is bool or t is str:
            return value
        if t is int or t is float:
            return value
        if t is Handle:
            return {"$h": [value.id, value.type_name]}
        if t is TensorSpec:
            return {"$T": [self._array(value.array), value.dtype, value.requires_grad,
                           value.device]}
        if t is list:
            return [self.encode(v, depth + 1) for v in value]
        if t is tuple:
            return {"$t": [self.encode(v, depth + 1) for v in value]}
        if t is dict and all(type(k) is str for k in value):
            return {"$d": {k: self.encode(v, depth + 1) for k, v in value.items()}}
        if isinstance(value, (list, tuple, dict)) and t.__module__ != "builtins":
            # OrderedDict, namedtuple, a UserList...: copied into the plain type here (in the
            # sender), so nothing of the subclass (e.g. a lying __eq__) reaches the decoder.
            plain = _plain_container(value)
            if plain is not None:
                return self.encode(plain, depth)
        if t is bytes:
            return {"$y": self._buffer(value)}
        if isinstance(value, np.ndarray) and value.dtype.kind in ALLOWED_KINDS:
            return {"$a": self._array(value.view(np.ndarray))}
        if isinstance(value, np.generic) and value.dtype.kind in ALLOWED_KINDS:
            return {"$s": self._array(np.asarray(value.view(value.dtype)))}
        if self.on_torch is not None and _is_torch_tensor(value):
            return self.encode(self.on_torch(value), depth)
        arr = _torch_to_numpy(value)
        if arr is not None and arr.dtype.kind in ALLOWED_KINDS:
            return {"$a": self._array(arr)}
        return self.encode(self.on_opaque(value), depth)


def _is_torch_tensor(value: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def encode(
    value: Any, *, limits: WireLimits = DEFAULT_LIMITS, on_opaque: OnOpaque = _refuse_opaque,
    on_torch: Callable[[Any], Any] | None = None,
) -> bytes:
    """Encode ``value``; objects that are not plain data go through ``on_opaque``.

    A torch tensor goes as its array (dtype kept, bfloat16 as float32), or, with
    ``on_torch``, as what that returns for it (the grader: a :class:`TensorSpec`).
    """
    enc = _Encoder(limits, on_opaque, on_torch)
    tree = enc.encode(value)
    try:
        text = json.dumps({"v": tree, "b": [len(b) for b in enc.buffers]}).encode()
    except (ValueError, RecursionError) as exc:
        raise CodecError(f"value cannot be encoded: {exc}") from exc
    if len(text) > limits.max_json_bytes:
        raise CodecError(f"message structure of {len(text)} bytes exceeds {limits.max_json_bytes} "
                         "bytes; send large data as numpy arrays")
    total = 4 + len(text) + enc.size
    if total > limits.max_bytes:
        raise CodecError(f"message of {total} bytes exceeds {limits.max_bytes} bytes {SIZE_LIMIT}")
    return b"".join([struct.pack(">I", len(text)), text, *enc.buffers])


class _Decoder:
    def __init__(self, view: memoryview, starts: list[int], limits: WireLimits, on_handle: OnHandle,
                 on_tensor: OnTensor) -> None:
        self.view = view
        self.starts = starts  # buffer i is view[starts[i]:starts[i + 1]]
        self.limits = limits
        self.on_handle = on_handle
        self.on_tensor = on_tensor
        self.items = 0
        # Each buffer decodes into its own copy: one used many times would multiply a
        # small message into unbounded memory (the encoder never shares a buffer).
        self.used: set[int] = set()

    def _buf(self, index: Any) -> memoryview:
        if type(index) is not int or not 0 <= index < len(self.starts) - 1:
            raise CodecError(f"bad buffer reference {index!r}")
        if index in self.used:
            raise CodecError(f"buffer {index} is referenced more than once")
        self.used.add(index)
        return self.view[self.starts[index] : self.starts[index + 1]]

    def _array(self, index: Any) -> np.ndarray:
        data = self._buf(index)
        shape, fortran, dtype, offset = parse_npy_header(data)
        if dtype.kind not in ALLOWED_KINDS or dtype.hasobject or dtype.fields is not None:
            raise CodecError(f"array dtype {dtype} is not allowed")
        if len(shape) > self.limits.max_array_dims or any(
            type(n) is not int or n < 0 for n in shape
        ):
            raise CodecError(f"bad array shape {shape!r}")
        count = math.prod(shape)
        if count * dtype.itemsize != len(data) - offset:
            raise CodecError(
                f"array of shape {shape} and dtype {dtype} does not match its "
                f"{len(data) - offset} data bytes"
            )
        try:
            flat = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
            arr = flat.reshape(shape, order="F" if fortran else "C")
            return np.array(arr, dtype=dtype.newbyteorder("="), order="C")  # owned, writable
        except ValueError as exc:  # e.g. shape (0, 10**22): zero bytes, impossible dimensions
            raise CodecError(f"bad array shape {shape!r}: {exc}") from exc

    def decode(self, node: Any, depth: int = 0) -> Any:
        self.items += 1
        if self.items > self.limits.max_items:
            raise CodecError(f"message has more than {self.limits.max_items} items")
        if depth > self.limits.max_depth:
            raise CodecError(f"message nests deeper than {self.limits.max_depth} levels")
        if node is None or type(node) in (bool, int, float, str):
            return node
        if type(node) is list:
            return [self.decode(v, depth + 1) for v in node]
        if type(node) is not dict or len(node) != 1:
            raise CodecError(f"malformed node of type {type(node).__name__}")
        ((tag, body),) = node.items()
        if tag == "$t" and type(body) is list:
            return tuple(self.decode(v, depth + 1) for v in body)
        if tag == "$d" and type(body) is dict:
            return {k: self.decode(v, depth + 1) for k, v in body.items()}
        if tag == "$a":
            return self._array(body)
        if tag == "$s":
            arr = self._array(body)
            if arr.ndim != 0:
                raise CodecError("numpy scalar must be 0-dimensional")
            return arr[()]
        if tag == "$y":
            return bytes(self._buf(body))
        if (
            tag == "$h"
            and type(body) is list
            and len(body) == 2
            and type(body[0]) is int
            and type(body[1]) is str
        ):
            return self.on_handle(Handle(body[0], body[1][:200]))
        if tag == "$T" and type(body) is list and len(body) == 4:
            # Fields first: an array is not even allocated for a tensor that must be refused.
            check_tensor_args(body[1], body[2], body[3])
            spec = TensorSpec(self._array(body[0]), body[1], body[2], body[3])
            return self.on_tensor(spec)
        raise CodecError(f"unknown or malformed tag {tag!r}")


def _keep_handle(handle: Handle) -> Any:
    return handle


def refuse_tensor(spec: TensorSpec) -> Any:
    raise CodecError("a tensor tag in a message to the grader; only the grader sends tensors "
                     "(the worker sends tensors as arrays)")


def decode(
    data: bytes | bytearray | memoryview,
    *,
    limits: WireLimits = DEFAULT_LIMITS,
    on_handle: OnHandle = _keep_handle,
    on_tensor: OnTensor = refuse_tensor,
) -> Any:
    """Decode a payload made by :func:`encode`; raises CodecError on anything else.

    Tensor tags are refused unless ``on_tensor`` builds something of them (the worker's
    decoder makes ``torch.Tensor`` objects; the grader's keeps the default)."""
    view = memoryview(data)
    if len(view) > limits.max_bytes:
        raise CodecError(f"message of {len(view)} bytes exceeds {limits.max_bytes} bytes {SIZE_LIMIT}")
    if len(view) < 4:
        raise CodecError("message too short")
    (jlen,) = struct.unpack(">I", view[:4])
    if 4 + jlen > len(view):
        raise CodecError("message truncated")
    if jlen > limits.max_json_bytes:
        raise CodecError(f"message structure of {jlen} bytes exceeds {limits.max_json_bytes} bytes; "
                         "send large data as numpy arrays")
    try:
        header = json.loads(bytes(view[4 : 4 + jlen]))
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        raise CodecError(f"malformed message: {type(exc).__name__}") from exc
    if type(header) is not dict or set(header) != {"v", "b"} or type(header["b"]) is not list:
        raise CodecError("malformed message envelope")
    lengths = header["b"]
    if len(lengths) > limits.max_items:
        raise CodecError(f"message has more than {limits.max_items} buffers")
    if any(type(n) is not int or n < 0 for n in lengths):
        raise CodecError("malformed buffer table")
    if sum(lengths) != len(view) - 4 - jlen:
        raise CodecError("buffer table does not match the message size")
    starts = list(itertools.accumulate(lengths, initial=4 + jlen))
    try:
        return _Decoder(view, starts, limits, on_handle, on_tensor).decode(header["v"])
    except RecursionError as exc:
        raise CodecError("message nests too deeply") from exc
