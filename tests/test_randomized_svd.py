"""The randomized truncated SVD of the low-rank compressor: error against the exact SVD (a NumPy
float64 oracle) over spectra that converge slowly and fast, identities, determinism from the seed,
the NumPy and TF paths agreeing (eager, tf.function, XLA, TF1 graph), degenerate inputs."""

import numpy as np
import pytest
import tensorflow as tf

from conftest import run_in_mode
from tf_matcomp.compressors import LowRankDecompMatrixCompressor, compressor_hparams, low_rank
from tf_matcomp.compressors import randomized_svd as rsvd

M, N, K = 480, 400, 64


def _orthogonal(rng, size):
    q, _ = np.linalg.qr(rng.standard_normal((size, size)))
    return q


def _matrix(kind: str, m: int = M, n: int = N, seed: int = 0) -> np.ndarray:
    """Test matrices whose spectra make subspace iteration converge slowly or fast."""
    rng = np.random.default_rng(seed)
    if kind == "gaussian":  # flat spectrum: the slowest case
        return rng.standard_normal((m, n)).astype(np.float32)
    if kind == "low_rank_plus_noise":
        signal = rng.standard_normal((m, 24)) @ rng.standard_normal((24, n))
        return (signal + 0.5 * rng.standard_normal((m, n))).astype(np.float32)
    size = min(m, n)
    index = np.arange(size)
    spectrum = {
        "slow_decay": 1.0 / np.sqrt(1.0 + index),
        "fast_decay": np.exp(-index / (size / 20)),
    }[kind]
    u = _orthogonal(rng, m)[:, :size]
    v = _orthogonal(rng, n)[:, :size]
    return ((u * spectrum) @ v.T).astype(np.float32)


def _optimal_error(a: np.ndarray, k: int) -> float:
    s = np.linalg.svd(a.astype(np.float64), compute_uv=False)
    return float(np.sqrt(np.sum(s[k:] ** 2)))


def _error(a, u, s, vt) -> float:
    a64 = a.astype(np.float64)
    return float(np.linalg.norm(a64 - (np.asarray(u, np.float64) * s) @ np.asarray(vt, np.float64)))


KINDS = ["gaussian", "slow_decay", "fast_decay", "low_rank_plus_noise"]


@pytest.mark.parametrize("kind", KINDS)
def test_numpy_path_error_within_one_percent_of_exact_svd(kind):
    a = _matrix(kind)
    u, s, vt = rsvd.randomized_svd_numpy(a, K)
    optimal = _optimal_error(a, K)
    error = _error(a, u, s, vt)
    assert error <= 1.01 * optimal
    assert error >= optimal * (1 - 1e-5)  # the exact truncated SVD is optimal


@pytest.mark.parametrize("mode", ["eager", "function", "jit"])
@pytest.mark.parametrize("kind", ["gaussian", "fast_decay"])
def test_tf_path_error_within_one_percent_in_every_mode(kind, mode):
    a = _matrix(kind, seed=1)
    u, s, vt = run_in_mode(mode, lambda x: rsvd.randomized_svd(x, K), tf.constant(a))
    assert _error(a, u.numpy(), s.numpy(), vt.numpy()) <= 1.01 * _optimal_error(a, K)


@pytest.mark.parametrize("kind", ["gaussian", "fast_decay"])
def test_singular_vectors_are_orthonormal_and_values_match_the_exact_ones(kind):
    a = _matrix(kind, seed=2)
    u, s, vt = rsvd.randomized_svd_numpy(a, K)
    np.testing.assert_allclose(u.T @ u, np.eye(K), atol=1e-4)
    np.testing.assert_allclose(vt @ vt.T, np.eye(K), atol=1e-4)
    assert np.all(np.diff(s) <= 1e-6 * s[0])  # descending
    exact = np.linalg.svd(a.astype(np.float64), compute_uv=False)[:K]
    # Each Ritz value is below its singular value (interlacing) and close to it.
    assert np.all(s <= exact * (1 + 1e-4))
    np.testing.assert_allclose(s[: K // 2], exact[: K // 2], rtol=0.03)


def test_deterministic_for_a_seed_and_the_sketch_depends_on_it():
    a = _matrix("gaussian", seed=3)
    first = rsvd.randomized_svd_numpy(a, K, seed=7)
    again = rsvd.randomized_svd_numpy(a, K, seed=7)
    other = rsvd.randomized_svd_numpy(a, K, seed=8)
    for x, y in zip(first, again):
        np.testing.assert_array_equal(x, y)
    assert not np.allclose(first[0], other[0])
    optimal = _optimal_error(a, K)
    assert _error(a, *other) <= 1.01 * optimal  # any seed is accurate


def test_numpy_and_tf_paths_agree():
    a = _matrix("low_rank_plus_noise", seed=4)
    from_numpy = rsvd.randomized_svd_numpy(a, K)
    from_tf = [t.numpy() for t in rsvd.randomized_svd(tf.constant(a), K)]
    np.testing.assert_allclose(from_numpy[1], from_tf[1], rtol=1e-4)
    np.testing.assert_allclose(
        (from_numpy[0] * from_numpy[1]) @ from_numpy[2],
        (from_tf[0] * from_tf[1]) @ from_tf[2],
        atol=1e-3 * np.abs(a).max(),
    )


def test_numpy_path_inside_a_tf1_graph_runs_and_leaves_the_graph_alone():
    a = _matrix("fast_decay", seed=5)
    eager = rsvd.randomized_svd_numpy(a, K)
    graph = tf.Graph()
    with graph.as_default():
        before = len(graph.get_operations())
        in_graph = rsvd.randomized_svd_numpy(a, K)
        assert len(graph.get_operations()) == before
    for x, y in zip(eager, in_graph):
        assert isinstance(y, np.ndarray)
        np.testing.assert_allclose(x, y, atol=1e-5)


def test_exact_low_rank_and_zero_matrices():
    rng = np.random.default_rng(6)
    rank_10 = (rng.standard_normal((M, 10)) @ rng.standard_normal((10, N))).astype(np.float32)
    u, s, vt = rsvd.randomized_svd_numpy(rank_10, K)  # k > rank: the rest of s is ~0
    assert np.all(np.isfinite(u)) and np.all(np.isfinite(vt))
    assert _error(rank_10, u, s, vt) <= 1e-5 * np.linalg.norm(rank_10)
    u, s, vt = rsvd.randomized_svd_numpy(np.zeros((M, N), np.float32), K)
    assert np.all(np.isfinite(u)) and np.all(np.isfinite(vt))
    np.testing.assert_array_equal(s, np.zeros(K, np.float32))


def test_float64_computes_in_float64():
    a = _matrix("fast_decay", seed=7).astype(np.float64)
    u, s, vt = rsvd.randomized_svd_numpy(a, K)
    assert u.dtype == s.dtype == vt.dtype == np.float64
    np.testing.assert_allclose(u.T @ u, np.eye(K), atol=1e-10)
    assert _error(a, u, s, vt) <= 1.01 * _optimal_error(a, K)


def test_a_sketch_wider_than_the_matrix_is_refused():
    with pytest.raises(ValueError, match="k \\+ oversampling"):
        rsvd.randomized_svd(tf.zeros((40, 30)), 25)


@pytest.mark.parametrize("kind", ["gaussian", "slow_decay"])
def test_compressor_factors_both_paths_within_one_percent(kind):
    a = _matrix(kind, seed=8)
    spec = compressor_hparams()
    spec.set_hparam("rank", 100 * 400 // K)  # k = min(m, n) * 100 / rank = K
    compressor = LowRankDecompMatrixCompressor(spec, method="randomized")
    assert compressor.rank_for(a.shape) == K
    optimal = _optimal_error(a, K)
    b, c = compressor.static_matrix_compressor(a)
    tb, tc = (t.numpy() for t in compressor.tpu_matrix_compressor(tf.constant(a)))
    for left, right in ((b, c), (tb, tc)):
        error = np.linalg.norm(a.astype(np.float64) - left.astype(np.float64) @ right)
        assert error <= 1.01 * optimal
    # B = U√S and C = √S Vᵀ: column norms of B equal row norms of C (both √s).
    np.testing.assert_allclose(np.linalg.norm(b, axis=0), np.linalg.norm(c, axis=1), rtol=1e-4)


def test_auto_switches_to_randomized_above_the_exact_limit():
    assert low_rank._use_randomized("auto", 2048, 2048, 512)
    assert not low_rank._use_randomized("auto", low_rank.EXACT_SVD_MAX_DIM, 2048, 64)
