"""Unit tests of autograder.testing: the grader-side numerical helpers."""

from __future__ import annotations

import numpy as np
import pytest

from autograder.testing import numerical_gradient, rel_error, sample_coords


class TestRelError:
    def test_identical_arrays_give_zero(self) -> None:
        a = np.array([1.0, -2.0, 3.0])
        assert rel_error(a, a.copy()) == 0.0

    def test_cs231n_formula(self) -> None:
        # max |a - b| / max(1e-8, |a| + |b|) over entries
        a, b = np.array([1.0, 10.0]), np.array([1.1, 10.0])
        assert rel_error(a, b) == pytest.approx(0.1 / 2.1)

    def test_floor_keeps_tiny_values_from_exploding(self) -> None:
        assert rel_error(np.array([0.0]), np.array([1e-12])) == pytest.approx(1e-4)

    def test_symmetric_and_accepts_scalars_and_float32(self) -> None:
        a = np.float32(2.0)
        assert rel_error(a, 2.5) == rel_error(2.5, a) == pytest.approx(0.5 / 4.5)

    def test_shape_mismatch_is_an_error_not_a_broadcast(self) -> None:
        with pytest.raises(ValueError, match="shapes differ"):
            rel_error(np.zeros((3, 1)), np.zeros(3))

    def test_non_finite_values_never_pass(self) -> None:
        assert rel_error([1.0, np.nan], [1.0, 1.0]) == float("inf")
        assert rel_error([np.inf], [np.inf]) == float("inf")

    def test_empty(self) -> None:
        assert rel_error(np.zeros(0), np.zeros(0)) == 0.0


class TestSampleCoords:
    def test_distinct_in_bounds_and_indexable(self) -> None:
        rng = np.random.default_rng(0)
        shape = (4, 5, 6)
        coords = sample_coords(shape, 20, rng)
        assert len(coords) == 3 and all(c.shape == (20,) for c in coords)
        flat = np.ravel_multi_index(coords, shape)
        assert len(set(flat.tolist())) == 20
        assert np.all(np.diff(flat) > 0)  # row-major order
        a = np.arange(120).reshape(shape)
        np.testing.assert_array_equal(a[coords], flat)

    def test_capped_at_size(self) -> None:
        coords = sample_coords((2, 3), 100, np.random.default_rng(1))
        assert np.ravel_multi_index(coords, (2, 3)).tolist() == list(range(6))

    def test_reproducible_with_the_same_seed(self) -> None:
        a = sample_coords((10, 10), 7, np.random.default_rng(5))
        b = sample_coords((10, 10), 7, np.random.default_rng(5))
        assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))

    def test_zero_and_negative(self) -> None:
        coords = sample_coords((3, 3), 0, np.random.default_rng(0))
        assert np.zeros((3, 3))[coords].shape == (0,)
        with pytest.raises(ValueError):
            sample_coords((3,), -1, np.random.default_rng(0))

    def test_zero_dimensional(self) -> None:
        assert sample_coords((), 4, np.random.default_rng(0)) == ()


class TestNumericalGradient:
    def test_scalar_function_full_gradient(self) -> None:
        x = np.array([[1.0, -2.0], [0.5, 3.0]])
        grad = numerical_gradient(lambda v: np.sum(v**3), x, None)
        np.testing.assert_allclose(grad, 3 * x**2, rtol=1e-8)

    def test_vector_function_with_upstream_gradient(self) -> None:
        rng = np.random.default_rng(0)
        w = rng.standard_normal((4, 3))
        x = rng.standard_normal((5, 4))
        dout = rng.standard_normal((5, 3))
        grad = numerical_gradient(lambda v: np.tanh(v @ w), x, dout)
        expected = (dout * (1 - np.tanh(x @ w) ** 2)) @ w.T
        assert rel_error(grad, expected) < 1e-8

    def test_sampled_coordinates_and_nan_elsewhere(self) -> None:
        rng = np.random.default_rng(1)
        x = rng.standard_normal((6, 7))
        coords = sample_coords(x.shape, 5, rng)
        calls = []

        def f(v: np.ndarray) -> float:
            calls.append(1)
            return float(np.sum(np.sin(v)))

        grad = numerical_gradient(f, x, None, coords=coords)
        assert len(calls) == 10  # two evaluations per coordinate
        np.testing.assert_allclose(grad[coords], np.cos(x)[coords], rtol=1e-8)
        mask = np.ones(x.shape, bool)
        mask[coords] = False
        assert np.all(np.isnan(grad[mask]))

    def test_works_in_float64_for_float32_inputs(self) -> None:
        x = np.linspace(-1, 1, 5, dtype=np.float32)
        seen = []

        def f(v: np.ndarray) -> float:
            seen.append(v.dtype)
            return float(np.sum(np.exp(v)))

        grad = numerical_gradient(f, x, None)
        assert grad.dtype == np.float64 and set(seen) == {np.dtype(np.float64)}
        assert rel_error(grad, np.exp(x.astype(np.float64))) < 1e-8

    def test_callee_cannot_corrupt_later_evaluations_or_input(self) -> None:
        x = np.array([1.0, 2.0, 3.0])
        original = x.copy()

        def f(v: np.ndarray) -> float:
            value = float(np.sum(v**2))
            v[:] = 1e6  # a callee that scribbles on its argument
            return value

        np.testing.assert_allclose(numerical_gradient(f, x, None), 2 * original, rtol=1e-8)
        np.testing.assert_array_equal(x, original)

    def test_zero_dimensional_input(self) -> None:
        assert numerical_gradient(lambda v: v**2, np.array(3.0), None) == pytest.approx(6.0)

    def test_scalar_output_required_without_df(self) -> None:
        with pytest.raises(ValueError, match="df is None"):
            numerical_gradient(lambda v: v * 2, np.ones(3), None)

    def test_df_shape_must_match_output(self) -> None:
        with pytest.raises(ValueError, match="df has shape"):
            numerical_gradient(lambda v: v * 2, np.ones(3), np.ones(4))

    def test_coords_must_match_rank(self) -> None:
        with pytest.raises(ValueError, match="axes"):
            numerical_gradient(lambda v: np.sum(v), np.ones((2, 2)), None, coords=(np.array([0]),))

    def test_catches_a_wrong_analytic_gradient(self) -> None:
        # the use in hidden tests: a forgotten factor shows as a large relative error
        rng = np.random.default_rng(2)
        x = rng.standard_normal(8)
        numeric = numerical_gradient(lambda v: np.mean(v**2), x, None)
        assert rel_error(numeric, 2 * x / 8) < 1e-8
        assert rel_error(numeric, 2 * x) > 0.5
