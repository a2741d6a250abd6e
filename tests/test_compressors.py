"""The four compressors: formulas, shapes, dtypes, NumPy path == TF path, XLA, error bounds."""

import math
import tracemalloc

import numpy as np
import pytest
import tensorflow as tf

from tf_matcomp.compressors import (
    DLMatrixCompressor,
    KmeansMatrixCompressor,
    LowRankDecompMatrixCompressor,
    SimhashMatrixCompressor,
    compressor_hparams,
)
from tf_matcomp.compressors import dictionary_learning, low_rank


def _spec(**values):
    spec = compressor_hparams()
    for key, value in values.items():
        spec.set_hparam(key, value)
    return spec


def _relative_error(a, approx):
    return np.linalg.norm(a - approx) / np.linalg.norm(a)


def _jit(fn, *args):
    return tf.function(fn, jit_compile=True)(*args)


# --- low-rank -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape, rank, k", [((30, 20), 400, 5), ((20, 30), 300, 7), ((8, 8), 50, 8), ((64, 3), 200, 2)]
)
def test_low_rank_k_formula_and_factor_shapes(shape, rank, k):
    compressor = LowRankDecompMatrixCompressor(_spec(rank=rank))
    assert k == min(math.ceil(min(shape) * 100 / rank), min(shape))
    a = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    b, c = compressor.static_matrix_compressor(a)
    assert b.shape == (shape[0], k) and c.shape == (k, shape[1])
    assert [s.shape for s in compressor.factor_specs(shape)] == [b.shape, c.shape]


def test_low_rank_factors_are_u_sqrt_s_and_sqrt_s_vt():
    a = np.random.default_rng(1).standard_normal((40, 24))
    b, c = LowRankDecompMatrixCompressor(_spec(rank=300)).static_matrix_compressor(a)
    u, s, vt = np.linalg.svd(a)
    k = 8
    assert b.dtype == np.float64
    np.testing.assert_allclose(np.abs(b), np.abs(u[:, :k] * np.sqrt(s[:k])), atol=1e-10)
    np.testing.assert_allclose(np.abs(c), np.abs(np.sqrt(s[:k])[:, None] * vt[:k]), atol=1e-10)
    np.testing.assert_allclose(b @ c, (u[:, :k] * s[:k]) @ vt[:k], atol=1e-10)


@pytest.mark.parametrize("method", ["exact", "randomized"])
def test_low_rank_tf_path_matches_numpy_and_compiles_under_xla(method):
    a = np.random.default_rng(2).standard_normal((96, 80)).astype(np.float32)
    compressor = LowRankDecompMatrixCompressor(_spec(rank=800), method=method)
    b, c = compressor.static_matrix_compressor(a)
    for tb, tc in (
        compressor.tpu_matrix_compressor(tf.constant(a)),
        _jit(compressor.tpu_matrix_compressor, tf.constant(a)),
    ):
        assert tb.shape == b.shape and tc.shape == c.shape
        np.testing.assert_allclose(
            _relative_error(a, tb.numpy() @ tc.numpy()), _relative_error(a, b @ c), rtol=2e-3
        )


@pytest.mark.parametrize("spectrum", ["flat", "decaying"])
def test_randomized_svd_error_within_one_percent_of_exact(spectrum):
    rng = np.random.default_rng(3)
    m, n, k = 600, 500, 60
    if spectrum == "flat":
        a = rng.standard_normal((m, n))
    else:
        a = rng.standard_normal((m, 40)) @ rng.standard_normal((40, n)) + 0.3 * rng.standard_normal(
            (m, n)
        )
    a = a.astype(np.float32)
    errors = {}
    for method in ("exact", "randomized"):
        u, s, vt = low_rank.np_truncated_svd(a, k, method)
        errors[method] = np.linalg.norm(a - (u * s) @ vt)
    assert errors["randomized"] <= 1.01 * errors["exact"]
    assert errors["randomized"] >= errors["exact"] * (1 - 1e-5)  # exact is optimal


def test_auto_method_is_randomized_only_for_large_matrices():
    assert not low_rank._use_randomized("auto", 1024, 1024, 256)
    assert low_rank._use_randomized("auto", 4096, 4096, 1024)
    assert not low_rank._use_randomized("auto", 4096, 4096, 3000)


# --- simhash --------------------------------------------------------------------------------
@pytest.mark.parametrize("shape, rank", [((64, 40), 400), ((33, 17), 200), ((16, 9), 100)])
def test_simhash_bits_shapes_dtypes_and_paths_agree(shape, rank):
    compressor = SimhashMatrixCompressor(_spec(rank=rank))
    k = min(shape) * 100 // rank + 1
    a = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    signs, scales = compressor.static_matrix_compressor(a)
    assert signs.dtype == np.uint8 and signs.shape == (k, (shape[1] + 7) // 8)
    assert scales.shape == (shape[1],)
    assert [s.shape for s in compressor.factor_specs(shape)] == [signs.shape, scales.shape]
    tf_signs, tf_scales = compressor.tpu_matrix_compressor(tf.constant(a))
    np.testing.assert_array_equal(tf_signs.numpy(), signs)
    np.testing.assert_allclose(tf_scales.numpy(), scales, rtol=1e-4)
    approx = compressor.np_reconstruct([signs, scales], shape)
    np.testing.assert_allclose(
        compressor.reconstruct([tf_signs, tf_scales], shape).numpy(), approx, rtol=1e-3, atol=1e-4
    )
    jit_signs, _ = _jit(compressor.tpu_matrix_compressor, tf.constant(a))
    assert np.mean(jit_signs.numpy() == signs) > 0.99


def test_simhash_least_squares_scale_never_worse_than_zero_unlike_norm_matching():
    a = np.random.default_rng(5).standard_normal((256, 256)).astype(np.float32)
    errors = {}
    for scale in ("least_squares", "norm"):
        compressor = SimhashMatrixCompressor(_spec(rank=400), scale=scale)
        factors = compressor.static_matrix_compressor(a)
        errors[scale] = _relative_error(a, compressor.np_reconstruct(factors, a.shape))
    assert errors["least_squares"] < 1.0 < errors["norm"]


# --- k-means --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "clusters, block, code_dtype",
    [(16, 1, np.uint8), (256, 1, np.uint8), (300, 1, np.int32), (8, 4, np.uint8)],
)
def test_kmeans_shapes_and_code_dtypes(clusters, block, code_dtype):
    shape = (40, 24)
    compressor = KmeansMatrixCompressor(_spec(rank=clusters, block_size=block))
    a = np.random.default_rng(6).standard_normal(shape).astype(np.float32)
    codebook, codes = compressor.static_matrix_compressor(a)
    assert codebook.shape == (clusters, block) and codes.shape == (40, 24 // block)
    assert codes.dtype == code_dtype and codes.max() < clusters
    specs = compressor.factor_specs(shape)
    assert [s.shape for s in specs] == [codebook.shape, codes.shape]
    assert specs[1].dtype.as_numpy_dtype == code_dtype
    tf_codebook, tf_codes = compressor.tpu_matrix_compressor(tf.constant(a))
    assert tf_codebook.shape == codebook.shape and tf_codes.dtype.as_numpy_dtype == code_dtype


def test_kmeans_error_on_gaussian_and_zero_centroid():
    a = np.random.default_rng(7).standard_normal((256, 256)).astype(np.float32)
    compressor = KmeansMatrixCompressor(_spec(rank=16))
    codebook, codes = compressor.static_matrix_compressor(a)
    assert 0.0 in codebook[:, 0]  # the centroid nearest zero is snapped to 0, as the peer
    assert _relative_error(a, codebook[codes.astype(np.int64), 0]) < 0.12
    tf_factors = compressor.tpu_matrix_compressor(tf.constant(a))
    assert _relative_error(a, compressor.reconstruct(tf_factors, a.shape).numpy()) < 0.12
    xla_factors = _jit(compressor.tpu_matrix_compressor, tf.constant(a))
    assert _relative_error(a, compressor.reconstruct(xla_factors, a.shape).numpy()) < 0.12


def test_kmeans_pads_the_codebook_when_there_are_few_distinct_values():
    a = np.tile(np.float32([[1.0, -2.0, 3.0]]), (5, 2))
    codebook, codes = KmeansMatrixCompressor(_spec(rank=8)).static_matrix_compressor(a)
    assert codebook.shape == (8, 1)
    approx = codebook[codes.astype(np.int64), 0]
    assert np.count_nonzero(approx != a) == np.count_nonzero(a == np.abs(a).min())  # snapped


def test_kmeans_block_size_must_divide_columns():
    compressor = KmeansMatrixCompressor(_spec(rank=4, block_size=5))
    with pytest.raises(ValueError, match="block_size"):
        compressor.factor_specs((8, 12))


# --- dictionary learning --------------------------------------------------------------------
@pytest.mark.parametrize("shape, rank", [((48, 32), 400), ((30, 50), 200), ((20, 20), 100)])
def test_dictionary_learning_shapes_sparsity_and_paths(shape, rank):
    compressor = DLMatrixCompressor(_spec(rank=rank))
    k = min(math.ceil(min(shape) * 100 / rank), min(shape))
    s = min(max(math.ceil(k * 100 / rank), 1), k)
    assert compressor.sizes(shape) == (k, s)
    a = np.random.default_rng(8).standard_normal(shape).astype(np.float32)
    indices, values, dictionary = compressor.static_matrix_compressor(a)
    assert indices.shape == values.shape == (shape[0], s) and dictionary.shape == (k, shape[1])
    assert indices.dtype == np.int32
    assert all(len(set(row)) == s for row in indices)  # s distinct atoms per row
    error = _relative_error(a, dictionary_learning.np_dense_codes(indices, values, k) @ dictionary)
    tf_factors = compressor.tpu_matrix_compressor(tf.constant(a))
    tf_error = _relative_error(a, compressor.reconstruct(tf_factors, shape).numpy())
    np.testing.assert_allclose(tf_error, error, rtol=1e-3, atol=1e-5)
    if rank == 400:  # one XLA compilation is enough
        xla_factors = _jit(compressor.tpu_matrix_compressor, tf.constant(a))
        xla_error = _relative_error(a, compressor.reconstruct(xla_factors, shape).numpy())
        np.testing.assert_allclose(xla_error, error, rtol=1e-3, atol=1e-5)
    assert error < 1.0


def test_dictionary_learning_iterations_never_increase_the_error():
    rng = np.random.default_rng(9)
    a = (rng.standard_normal((80, 12)) @ rng.standard_normal((12, 60))).astype(np.float64)
    a += 0.1 * rng.standard_normal(a.shape)
    errors = []
    for iterations in (0, 1, 3):
        compressor = DLMatrixCompressor(_spec(rank=300), iterations=iterations)
        indices, values, dictionary = compressor.static_matrix_compressor(a)
        k = dictionary.shape[0]
        errors.append(
            _relative_error(a, dictionary_learning.np_dense_codes(indices, values, k) @ dictionary)
        )
    assert errors[0] >= errors[1] - 1e-9 >= errors[2] - 2e-9


def test_dictionary_learning_memory_is_a_few_matrices_not_an_mn_operator():
    """At 1024² the peer's (m·n) × (k·n) least-squares operator alone took 6.5 GB; here the
    peak of NumPy allocations stays within a few times the matrix (about 10× its float32
    bytes, most of it LAPACK's SVD workspace)."""
    a = np.random.default_rng(10).standard_normal((1024, 1024)).astype(np.float32)
    compressor = DLMatrixCompressor(_spec(rank=400))
    tracemalloc.start()
    try:
        compressor.static_matrix_compressor(a)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 12 * a.nbytes, peak  # 48 MB


def test_compressors_do_not_mutate_their_spec_or_the_global_rng():
    spec = _spec(rank=200, block_size=2)
    before = spec.values()
    state = np.random.get_state()[1].copy()
    a = np.random.default_rng(11).standard_normal((16, 8)).astype(np.float32)
    for compressor_class in (
        LowRankDecompMatrixCompressor,
        SimhashMatrixCompressor,
        KmeansMatrixCompressor,
        DLMatrixCompressor,
    ):
        compressor = compressor_class(spec)
        compressor.static_matrix_compressor(a)
        compressor.get_spec().set_hparam("rank", 999)
    assert spec.values() == before
    np.testing.assert_array_equal(np.random.get_state()[1], state)


@pytest.mark.parametrize(
    "compressor_class", [LowRankDecompMatrixCompressor, SimhashMatrixCompressor, DLMatrixCompressor]
)
def test_rank_must_be_positive(compressor_class):
    for rank in (0, -3):
        with pytest.raises(ValueError, match="rank"):
            compressor_class(_spec(rank=rank))
