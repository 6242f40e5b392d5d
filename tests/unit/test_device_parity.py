"""assert_device_parity: the grader compares the devices' results within per-dtype bands."""

from __future__ import annotations

import numpy as np
import pytest

from autograder.testing import PARITY_TOLERANCES, assert_device_parity


class FakeStudent:
    """Stands for the fixture: records the probes the helper runs in the worker."""

    def __init__(self) -> None:
        self.probes: list[str] = []

    def probe(self, name: str) -> dict:
        self.probes.append(name)
        return {}


def test_close_results_pass_and_determinism_is_set_before_each_device():
    student = FakeStudent()
    x = np.linspace(0, 1, 7, dtype=np.float32)
    outs = assert_device_parity(
        student, lambda d: {"y": x + (1e-6 if d == "cuda" else 0), "n": np.int64(3)})
    assert student.probes == ["deterministic_torch", "deterministic_torch"]
    assert len(outs) == 2


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
def test_a_difference_beyond_the_dtype_band_fails_naming_it(dtype):
    rtol, atol = PARITY_TOLERANCES[dtype]
    x = np.ones(4, dtype=dtype)
    bump = np.asarray(10 * (rtol + atol), dtype=dtype)
    with pytest.raises(AssertionError, match=rf"result\[1\]: cpu and cuda disagree .*{dtype}"):
        assert_device_parity(FakeStudent(), lambda d: (x, x + (bump if d == "cuda" else 0)))


def test_integers_must_match_exactly_and_shapes_and_dtypes_too():
    with pytest.raises(AssertionError, match="disagree"):
        assert_device_parity(FakeStudent(), lambda d: np.array([1, 2 + (d == "cuda")]))
    with pytest.raises(AssertionError, match=r"cpu gives float32\[3\], cuda gives float64\[3\]"):
        assert_device_parity(FakeStudent(), lambda d: np.zeros(3, np.float32 if d == "cpu"
                                                                 else np.float64))
    with pytest.raises(AssertionError, match="structure"):
        assert_device_parity(FakeStudent(), lambda d: [1.0] if d == "cpu" else [1.0, 2.0])


def test_the_determinism_probe_turns_tf32_off():
    torch = pytest.importorskip("torch")
    from autograder.probes import deterministic_torch

    before = torch.are_deterministic_algorithms_enabled()
    try:
        assert deterministic_torch(3) == {"tf32": False, "deterministic": True, "seed": 3}
        assert torch.backends.cuda.matmul.allow_tf32 is False
        assert torch.backends.cudnn.allow_tf32 is False
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(before)
