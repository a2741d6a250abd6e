"""tf_matcomp.compression_lib: graph_compression 0.0.4's module names, ported by import root.

Written from the peer's documented API (shared/notes/peer.md) and upstream source: each test
checks a documented behaviour against an oracle computed here (NumPy SVD, brute-force nearest
centroids, the peer's firing rule), not against tf_matcomp's own helpers.
"""

import math
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf

from tf_matcomp.compression_lib import compression_op as comp_op
from tf_matcomp.compression_lib import (
    compression_op_utils,
    compression_wrapper,
    compression_wrapper_py2,
    decompose_matrix,
    dl_compression_op,
    kmeans_quantize,
    simhash_compression_op,
)
from tf_matcomp.compression_lib.keras_layers import layers

keras = tf.keras


def _spec(text):
    return comp_op.CompressionOp.get_default_hparams().parse(text)


def _peer_firings(steps, begin, end, frequency):
    """The peer's TF-op rule: fire when g >= begin, g <= end (end -1: never stop) and
    last + frequency <= g; a firing sets last = g."""
    last, fired = -1, []
    for g in steps:
        if g >= begin and (end < 0 or g <= end) and last + frequency <= g:
            fired.append(g)
            last = g
    return fired


def _matrix(rows, cols, seed=0):
    return np.random.default_rng(seed).standard_normal((rows, cols)).astype(np.float32)


# --- compression_op_utils ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape, factor", [((100, 50), 200), ((10, 10), 7), ((3, 8, 5), 100), ((64, 96), 300)]
)
def test_compressed_rank_is_min_dim_times_100_over_factor_capped(shape, factor):
    expected = min(math.ceil(min(shape) * 100 / factor), min(shape))
    assert compression_op_utils.compute_compressed_rank_from_matrix_shape(shape, factor) == expected


def test_compressed_rank_rejects_a_non_positive_factor():
    with pytest.raises(ValueError, match="rank_factor"):
        compression_op_utils.compute_compressed_rank_from_matrix_shape((4, 4), 0)


def test_option_enums_have_the_peers_values():
    options = compression_op_utils.CompressionOptions
    assert [options.LOWRANK_MATRIX_COMPRESSION, options.SIMHASH_MATRIX_COMPRESSION] == [1, 2]
    assert [options.DL_MATRIX_COMPRESSION, options.KMEANS_MATRIX_COMPRESSION] == [3, 4]
    assert options.KMEANS_AND_PRUNING_MATRIX_COMPRESSION == 8
    updates = compression_op_utils.UpdateOptions
    assert [updates.TF_UPDATE, updates.PYTHON_UPDATE] == [0, 1]
    assert [updates.TF_AND_PYTHON_UPDATE, updates.NO_UPDATE] == [2, 3]


def test_flatten_last_dims():
    x = np.arange(120.0).reshape(2, 3, 4, 5)
    got = compression_op_utils.flatten_last_dims(tf.constant(x), ndims=2)
    np.testing.assert_array_equal(got.numpy(), x.reshape(2, 3, 20))


# --- decompose_matrix --------------------------------------------------------------------------
def test_np_simhash_decompose_is_sign_of_projection_with_norm_matching_scale():
    a = _matrix(40, 12, seed=1)
    r, s, d = decompose_matrix.np_simhash_decompose(a, 16, seed=3)
    assert r.shape == (40, 16) and s.shape == (16, 12) and d.shape == (12, 12)
    projections = r.astype(np.float64).T @ a
    np.testing.assert_array_equal(s, np.where(projections < 0, -1, 1))
    rs = r.astype(np.float64) @ s
    np.testing.assert_allclose(
        np.diag(d), np.linalg.norm(a, axis=0) / np.linalg.norm(rs, axis=0), rtol=1e-4
    )
    assert np.count_nonzero(d - np.diag(np.diag(d))) == 0
    # R is a fixed N(0, 1) matrix per seed
    again, _, _ = decompose_matrix.np_simhash_decompose(a, 16, seed=3)
    other, _, _ = decompose_matrix.np_simhash_decompose(a, 16, seed=4)
    np.testing.assert_array_equal(r, again)
    assert not np.allclose(r, other)
    big, _, _ = decompose_matrix.np_simhash_decompose(_matrix(2000, 4), 50, seed=0)
    assert abs(big.mean()) < 0.02 and abs(big.var() - 1) < 0.03


def test_tf_simhash_decompose_equals_the_numpy_one():
    a = _matrix(24, 10, seed=2)
    np_parts = decompose_matrix.np_simhash_decompose(a, 8, seed=5)
    tf_parts = decompose_matrix.tf_simhash_decompose(tf.constant(a), 8, seed=5)
    for want, got in zip(np_parts, tf_parts):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)


# --- kmeans_quantize ---------------------------------------------------------------------------
def test_prune_zeroes_the_smallest_magnitudes_and_leaves_the_input_alone():
    a = _matrix(10, 10, seed=3)
    before = a.copy()
    pruned = kmeans_quantize.prune(a, fraction=0.3)
    np.testing.assert_array_equal(a, before)
    threshold = np.sort(np.abs(a).ravel())[30]
    np.testing.assert_array_equal(pruned, np.where(np.abs(a) < threshold, 0, a))


def _nearest(blocks, codebook):
    distances = ((blocks[:, None, :] - codebook[None, :, :]) ** 2).sum(-1)
    return distances.min(axis=1)


def test_kmeans_quantize_block_assigns_each_block_to_its_nearest_centroid():
    a = _matrix(16, 12, seed=4)
    codebook, encoding = kmeans_quantize.kmeans_quantize_block(a, levels=6, block_size=3)
    assert codebook.shape == (6, 3) and encoding.shape == (16, 4)
    blocks = a.reshape(-1, 3).astype(np.float64)
    chosen = codebook[encoding.ravel()].astype(np.float64)
    np.testing.assert_allclose(
        ((blocks - chosen) ** 2).sum(-1), _nearest(blocks, codebook), rtol=1e-5, atol=1e-6
    )
    assert np.min(np.abs(codebook).sum(axis=1)) == 0  # the centroid nearest zero is zero


def test_kmeans_quantize_block_is_exact_with_as_many_levels_as_distinct_blocks():
    rows = np.array([[1.0, 2.0], [-3.0, 0.5], [4.0, -1.0], [0.0, 0.0]], np.float32)
    a = rows[np.random.default_rng(0).integers(0, 4, size=12)].reshape(6, 4)
    codebook, encoding = kmeans_quantize.kmeans_quantize_block(a, levels=4, block_size=2)
    np.testing.assert_array_equal(codebook[encoding].reshape(6, 4), a)


def test_unpadded_codebook_keeps_only_used_centroids_and_the_same_reconstruction():
    a = np.repeat(np.array([[1.0, -2.0, 3.0]], np.float32), 4, axis=0)  # 3 distinct values
    padded, codes = kmeans_quantize.kmeans_quantize_block(a, levels=8, block_size=1)
    unpadded, renumbered = kmeans_quantize.kmeans_quantize_block(
        a, levels=8, block_size=1, is_padded=False
    )
    assert padded.shape == (8, 1) and unpadded.shape[0] < 8
    assert set(np.unique(renumbered)) == set(range(unpadded.shape[0]))
    np.testing.assert_array_equal(unpadded[renumbered], padded[codes])


@pytest.mark.parametrize(
    "kwargs, name", [(dict(block_size=5), "block_size"), (dict(pruning_factor=1.5), "pruning")]
)
def test_kmeans_quantize_block_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        kmeans_quantize.kmeans_quantize_block(_matrix(4, 8), levels=4, **kwargs)


# --- compression_op ----------------------------------------------------------------------------
def test_low_rank_compressor_gives_the_truncated_svd_factors():
    spec = comp_op.LowRankDecompMatrixCompressor.get_default_hparams()
    spec.set_hparam("rank", 200)
    a = _matrix(20, 12, seed=5)
    b, c = comp_op.LowRankDecompMatrixCompressor(spec=spec).static_matrix_compressor(a)
    k = 6  # ceil(12 · 100 / 200)
    assert b.shape == (20, k) and c.shape == (k, 12)
    u, s, vt = np.linalg.svd(a.astype(np.float64))
    np.testing.assert_allclose(b @ c, (u[:, :k] * s[:k]) @ vt[:k], atol=1e-4)


def test_tf1_update_op_follows_the_peers_rule_and_last_alpha_update_step():
    # The peer's tests read CompressionOp._last_alpha_update_step.
    steps = list(range(40))
    with tf.Graph().as_default():
        global_step = tf.compat.v1.train.get_or_create_global_step()
        hparams = _spec(
            "name=tf1,rank=200,begin_compression_step=3,end_compression_step=30,"
            "compression_frequency=7,alpha_decrement_value=0.1"
        )
        apply = compression_wrapper.get_apply_compression(hparams, global_step=global_step)
        apply.apply_compression(tf.compat.v1.get_variable("w", initializer=_matrix(6, 5)))
        op = apply.get_last_compression_op()
        with tf.control_dependencies([apply.all_update_op()]):
            train = tf.compat.v1.assign_add(global_step, 1)
        lasts, alphas = [], []
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            for _ in steps:
                sess.run(train)
                lasts.append(int(sess.run(op._last_alpha_update_step)))
                alphas.append(float(sess.run(op.alpha)))
    fired = _peer_firings(steps, 3, 30, 7)
    assert sorted(set(lasts) - {-1}) == fired == [6, 13, 20, 27]
    assert alphas[-1] == pytest.approx(1 - 0.1 * len(fired))


def _norms(sess, op):
    return [
        np.linalg.norm(sess.run(v))
        for v in (op.a_matrix_tfvar, op.b_matrix_tfvar, op.c_matrix_tfvar)
    ]


def test_peer_compression_op_interface_in_a_tf1_session():
    # The peer's testCompressionOpInterface: an int32 global step set by hand.
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        global_step = tf.compat.v1.get_variable("global_step", initializer=30)
        op = comp_op.CompressionOp(
            spec=_spec(
                "name=cifar10_compression,begin_compression_step=1000,"
                "end_compression_step=120000,compression_frequency=10,compression_option=1,"
                "update_option=0"
            ),
            global_step=global_step,
        )
        a_init = np.array([[1.0, 1.0, 1.0], [1.0, 0, 0], [1.0, 0, 0]], np.float32)
        a = tf.compat.v1.get_variable("a_matrix", initializer=a_init)
        compressor = comp_op.LowRankDecompMatrixCompressor(
            spec=comp_op.LowRankDecompMatrixCompressor.get_default_hparams().parse(
                "num_rows=3,num_cols=3,rank=200"
            )
        )
        compressed, update = op.get_apply_compression_op(a, compressor, scope="my_scope")
        sess.run(tf.compat.v1.global_variables_initializer())
        assert [n > 0 for n in _norms(sess, op)] == [True, False, False]
        for step, alpha in [(1001, 0.99), (1001, 0.99), (2000, 0.98)]:
            sess.run(tf.compat.v1.assign(global_step, step))
            sess.run(update)
            sess.run(compressed)
            assert sess.run(op._global_step) == step
            assert sess.run(op.alpha) == pytest.approx(alpha)
            assert sess.run(op._last_alpha_update_step) == step
        b, c = compressor.static_matrix_compressor(a_init)
        np.testing.assert_allclose(np.abs(sess.run(op.b_matrix_tfvar)), np.abs(b), atol=1e-5)
        np.testing.assert_allclose(np.abs(sess.run(op.c_matrix_tfvar)), np.abs(c), atol=1e-5)


def test_peer_apply_compression_runs_its_all_update_op_attribute():
    # The peer's testApplyCompression reads _compression_ops and runs _all_update_op.
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        global_step = tf.compat.v1.get_variable("global_step", initializer=30)
        compressor = comp_op.LowRankDecompMatrixCompressor(
            spec=comp_op.LowRankDecompMatrixCompressor.get_default_hparams().parse(
                "num_rows=5,num_cols=5,rank=200"
            )
        )
        apply = comp_op.ApplyCompression(
            scope="default_scope",
            compression_spec=_spec(
                "name=cifar10_compression,begin_compression_step=1000,"
                "end_compression_step=120000,compression_frequency=100,compression_option=1"
            ),
            compressor=compressor,
            global_step=global_step,
        )
        a_init = np.outer([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]).astype(np.float32)
        compressed = apply.apply_compression(
            tf.compat.v1.get_variable("a_matrix", initializer=a_init), scope="first_compressor"
        )
        apply.apply_compression(
            tf.compat.v1.get_variable("a_matrix2", initializer=a_init), scope="second_compressor"
        )
        first, second = apply._compression_ops
        apply.all_update_op()
        sess.run(tf.compat.v1.global_variables_initializer())
        assert sess.run(first._last_alpha_update_step) == -1
        for step, alpha in [(1001, 0.99), (1001, 0.99), (2000, 0.98)]:
            sess.run(tf.compat.v1.assign(global_step, step))
            sess.run(apply._all_update_op)
            sess.run(compressed)
            assert sess.run(first.alpha) == pytest.approx(alpha)
            assert sess.run(second.alpha) == pytest.approx(alpha)
        assert sess.run(first._last_alpha_update_step) == 2000
        assert all(n > 0 for n in _norms(sess, first))


def test_kmeans_compressor_skip_decomp_gives_random_factors_of_the_right_form():
    spec = simhash_compression_op.KmeansMatrixCompressor.get_default_hparams()
    spec.set_hparam("rank", 5)
    spec.set_hparam("block_size", 2)
    compressor = simhash_compression_op.KmeansMatrixCompressor(spec=spec)
    a = _matrix(6, 4, seed=15)
    codebook, codes = compressor.static_matrix_compressor(a, skip_decomp=True)
    assert codebook.shape == (5, 2) and codes.shape == (6, 2) and codes.dtype == np.uint8
    assert codes.max() < 5
    real_book, real_codes = compressor.static_matrix_compressor(a)
    blocks = a.reshape(-1, 2).astype(np.float64)
    chosen = real_book[real_codes.ravel()].astype(np.float64)
    np.testing.assert_allclose(
        ((blocks - chosen) ** 2).sum(-1), _nearest(blocks, real_book), rtol=1e-5, atol=1e-6
    )


def test_plain_compression_op_with_a_dl_compressor_has_the_peers_sparse_b_and_dictionary_c():
    hparams = _spec("compression_option=3,rank=200,compression_frequency=1,update_option=1")
    compressor = dl_compression_op.DLMatrixCompressor(
        spec=compression_wrapper.get_apply_compression(hparams).get_matrix_compressor().get_spec()
    )
    op = comp_op.CompressionOp(spec=hparams)
    a = tf.Variable(_matrix(10, 8, seed=6))
    op.get_apply_compression_op(a, compressor)
    k = 4  # ceil(8 · 100 / 200) atoms, ceil(4 · 100 / 200) = 2 non-zeros per row
    assert isinstance(op.b_matrix_tfvar, tf.SparseTensor)
    assert tuple(op.b_matrix_tfvar.dense_shape.numpy()) == (10, k)
    assert op.b_matrix_tfvar.values.shape[0] == 0  # nothing computed before the first firing
    assert op.c_matrix_tfvar.shape == (k, 8)
    op.run_update_step(step_number=0)
    b = tf.sparse.to_dense(op.b_matrix_tfvar).numpy()
    assert np.all((b != 0).sum(axis=1) <= 2)
    np.testing.assert_allclose(
        b @ op.c_matrix_tfvar.numpy(), op.get_compressed_weight().numpy(), rtol=1e-5, atol=1e-5
    )


def test_get_apply_matmul_keras_is_inputs_times_the_weight():
    apply = compression_wrapper.get_apply_compression(
        _spec("rank=200,compression_frequency=1,alpha_decrement_value=0.5")
    )
    apply.apply_compression(tf.Variable(_matrix(6, 4, seed=7)), "keras_matmul")
    op = apply.get_last_compression_op()
    op.update(0)
    x = _matrix(3, 6, seed=8)
    np.testing.assert_allclose(
        op.get_apply_matmul_keras(x).numpy(), x @ op.get_weight().numpy(), rtol=1e-5, atol=1e-5
    )


def test_compression_op_eager_steps_alpha_on_the_schedule():
    hparams = _spec(
        "rank=200,begin_compression_step=2,end_compression_step=9,compression_frequency=3,"
        "alpha_decrement_value=0.25"
    )
    eager = comp_op.CompressionOpEager(spec=hparams)
    a = tf.Variable(_matrix(6, 6, seed=9))
    eager.set_up_variables(a, comp_op.LowRankDecompMatrixCompressor(spec=None))
    fired = [step for step in range(12) if eager.run_update_step(step)]
    assert fired == _peer_firings(range(12), 2, 9, 3) == [2, 5, 8]
    assert float(eager.alpha.numpy()) == 0.25
    w = eager.get_apply_compression().numpy()
    b, c = eager.b_matrix_tfvar.numpy(), eager.c_matrix_tfvar.numpy()
    np.testing.assert_allclose(w, 0.25 * a.numpy() + 0.75 * b @ c, rtol=1e-5, atol=1e-5)


def test_apply_compression_takes_a_per_weight_spec_and_compressor():
    hparams = _spec("rank=200")
    apply = compression_wrapper_py2.get_apply_compression(hparams)
    other = _spec("rank=400")
    apply.apply_compression(tf.Variable(_matrix(8, 8)), "first")
    apply.apply_compression(
        tf.Variable(_matrix(8, 8)),
        "second",
        spec=other,
        compressor=compression_wrapper.get_apply_compression(other).get_matrix_compressor(),
    )
    first, second = apply.get_compression_ops()
    assert first.b_matrix_tfvar.shape == (8, 4) and second.b_matrix_tfvar.shape == (8, 2)
    assert second.get_spec().rank == 400


# --- dl_compression_op -------------------------------------------------------------------------
def _dl_error(compressor, a, n_iterations):
    indices, values, dictionary = compressor.static_matrix_compressor(a, n_iterations=n_iterations)
    b = np.zeros((a.shape[0], dictionary.shape[0]))
    np.put_along_axis(b, indices.astype(np.int64), values, axis=1)
    return np.linalg.norm(a - b @ dictionary)


def test_dl_static_matrix_compressor_takes_n_iterations_and_never_gets_worse():
    spec = dl_compression_op.DLMatrixCompressor.get_default_hparams()
    spec.set_hparam("rank", 200)
    compressor = dl_compression_op.DLMatrixCompressor(spec=spec)
    a = _matrix(24, 16, seed=10).astype(np.float64)
    errors = [_dl_error(compressor, a, n) for n in (0, 1, 4)]
    assert errors[0] >= errors[1] - 1e-9 >= errors[2] - 2e-9, errors
    assert errors[2] < np.linalg.norm(a)
    with pytest.raises(ValueError, match="n_iterations"):
        compressor.static_matrix_compressor(a, n_iterations=-1)


def test_wrapper_option_3_builds_dl_ops_with_the_sparse_b():
    apply = compression_wrapper.get_apply_compression(_spec("compression_option=3,rank=200"))
    assert isinstance(apply, dl_compression_op.DLApplyCompression)
    apply.apply_compression(tf.Variable(_matrix(6, 6)), "dl")
    op = apply.get_last_compression_op()
    assert isinstance(op, dl_compression_op.DLCompressionOp)
    assert isinstance(op.b_matrix_tfvar, tf.SparseTensor)
    assert op.b_matrix_values_tfvar.shape == (6, 2) and op.c_matrix_tfvar.shape == (3, 6)


# --- compression_wrapper (the peer's wrapper tests, import root changed) -----------------------
def _wrapper_spec(option):
    hparams = _spec(
        "name=cifar10_compression,alpha_decrement_value=0.005,begin_compression_step=40000,"
        "end_compression_step=100000,compression_frequency=100,use_tpu=False,"
        "update_option=1,rank=4"
    )
    hparams.set_hparam("compression_option", option)
    return hparams


@pytest.mark.parametrize(
    "option, module, compressor_name, apply_name",
    [
        (1, comp_op, "LowRankDecompMatrixCompressor", "ApplyCompression"),
        (2, simhash_compression_op, "SimhashMatrixCompressor", "SimhashApplyCompression"),
    ],
)
def test_wrapper_looks_its_classes_up_when_called(option, module, compressor_name, apply_name):
    hparams = _wrapper_spec(option)
    sentinel = object()
    with mock.patch.object(module, compressor_name) as compressor_mock:
        compressor_mock.side_effect = [sentinel]
        with mock.patch.object(module, apply_name) as apply_mock:
            compression_wrapper.get_apply_compression(hparams, 10)
            apply_mock.assert_called_with(
                scope="default_scope", compression_spec=hparams, compressor=sentinel, global_step=10
            )
    assert compressor_mock.call_args.kwargs["spec"].rank == 4


@pytest.mark.parametrize(
    "option, compressor_class, apply_class",
    [
        (1, comp_op.LowRankDecompMatrixCompressor, comp_op.ApplyCompression),
        (
            2,
            simhash_compression_op.SimhashMatrixCompressor,
            simhash_compression_op.SimhashApplyCompression,
        ),
        (3, dl_compression_op.DLMatrixCompressor, dl_compression_op.DLApplyCompression),
        (
            4,
            simhash_compression_op.KmeansMatrixCompressor,
            simhash_compression_op.SimhashApplyCompression,
        ),
    ],
)
def test_wrapper_picks_the_peers_classes(option, compressor_class, apply_class):
    apply = compression_wrapper.get_apply_compression(_wrapper_spec(option), global_step=None)
    assert type(apply) is apply_class
    assert type(apply.get_matrix_compressor()) is compressor_class


def test_wrapper_rejects_an_unknown_option():
    with pytest.raises(ValueError, match="compression_option"):
        compression_wrapper.get_apply_compression(_wrapper_spec(7), global_step=None)


def test_py2_wrapper_uses_its_apply_compression_looked_up_when_called():
    hparams = _wrapper_spec(4)
    with mock.patch.object(compression_wrapper_py2, "ApplyCompression") as apply_mock:
        compression_wrapper_py2.get_apply_compression(hparams, 10)
    assert apply_mock.call_args.kwargs["compression_spec"] is hparams
    assert isinstance(
        apply_mock.call_args.kwargs["compressor"], simhash_compression_op.KmeansMatrixCompressor
    )
    assert compression_wrapper_py2.COMP_OP_MAP[3] is dl_compression_op.DLCompressionOp


# --- keras_layers/layers.py --------------------------------------------------------------------
def _schedule_spec():
    return _spec(
        "rank=200,begin_compression_step=0,compression_frequency=2,alpha_decrement_value=0.5"
    )


def test_compressed_dense_with_compression_obj_trains_its_factors_on_the_schedule():
    apply = compression_wrapper.get_apply_compression(_schedule_spec())
    layer = layers.CompressedDense(4, activation="relu", compression_obj=apply)
    model = keras.Sequential([keras.Input((6,)), layer])
    op = apply.get_last_compression_op()
    assert layer.compression_op is op and op.a_matrix_tfvar is layer.kernel
    trainable = {id(v) for v in layer.trainable_weights}
    assert id(op.b_matrix_tfvar) in trainable and id(op.c_matrix_tfvar) in trainable
    fired = [s for s in range(4) if apply.run_update_step(step_number=s)[0]]
    assert fired == _peer_firings(range(4), 0, -1, 2) == [1, 3]
    x = _matrix(5, 6, seed=11)
    w, bias = op.get_weight().numpy(), layer.bias.numpy()
    np.testing.assert_allclose(model(x).numpy(), np.maximum(x @ w + bias, 0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(w, op.get_compressed_weight().numpy(), rtol=1e-5, atol=1e-5)
    assert not layer.run_alpha_update(4) and layer.run_alpha_update(5)  # next firing at 5
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    before = op.c_matrix_tfvar.numpy().copy()
    model.fit(x, _matrix(5, 4, seed=12), epochs=1, verbose=0)
    assert not np.allclose(before, op.c_matrix_tfvar.numpy())  # the optimizer trains C


def test_compressed_conv2d_projects_filters_over_rank_channels():
    apply = compression_wrapper.get_apply_compression(_spec("rank=2"))
    layer = layers.CompressedConv2D(6, 3, padding="same", compression_obj=apply)
    x = _matrix(2 * 5 * 5, 4, seed=13).reshape(2, 5, 5, 4)
    y = layer(x).numpy()
    assert y.shape == (2, 5, 5, 6) and layer.kernel.shape == (3, 3, 4, 3)
    narrow = tf.nn.conv2d(x, layer.kernel, 1, "SAME").numpy() + layer.bias.numpy()
    np.testing.assert_allclose(y, narrow @ layer.b_matrix.numpy(), rtol=1e-4, atol=1e-4)
    assert layer.compute_output_shape((2, 5, 5, 4)) == (2, 5, 5, 6)
    with pytest.raises(ValueError, match="divisible"):
        layers.CompressedConv2D(5, 3, compression_obj=apply)


def test_compressed_linear_layer_blends_w_on_its_eager_schedule():
    spec = comp_op.LowRankDecompMatrixCompressor.get_default_hparams()
    spec.set_hparam("rank", 200)
    layer = layers.CompressedLinearLayer(6, 4, comp_op.LowRankDecompMatrixCompressor(spec=spec))
    layer.set_up_variables()
    for step in range(10):  # default op spec: begin 0, frequency 10 → one firing, at 9
        layer.run_alpha_update(step)
    op = layer.compression_op
    assert float(op.alpha.numpy()) == pytest.approx(0.99)
    x = _matrix(3, 6, seed=14)
    w = 0.99 * layer.w.numpy() + 0.01 * op.b_matrix_tfvar.numpy() @ op.c_matrix_tfvar.numpy()
    np.testing.assert_allclose(layer(x).numpy(), x @ w + layer.b.numpy(), rtol=1e-5, atol=1e-5)


def test_layers_without_compression_obj_are_an_error():
    with pytest.raises(ValueError, match="compression_obj"):
        layers.CompressedDense(4)


# --- compression_op.InputOutputCompressionOp (option 9) ------------------------------------------
def _block_diagonal(block, count):
    return np.kron(np.eye(count, dtype=block.dtype), block)


def _peer_io_op(extra=""):
    """The peer's own test setup: a 12x8 outer product, both sides on, blocks 4, factors 2,
    and the LowRankDecompMatrixCompressor it passes."""
    hparams = comp_op.InputOutputCompressionOp.get_default_hparams().parse(
        "name=input_output_compression,compression_option=9,begin_compression_step=0,"
        "compression_frequency=1,alpha_decrement_value=0.5,compress_input=True,"
        "compress_output=True,input_compression_factor=2,input_block_size=4,"
        "output_compression_factor=2,output_block_size=4" + extra
    )
    op = comp_op.InputOutputCompressionOp(spec=hparams)
    a = np.outer([1.0, 2, 3, 7, 8, 9, 1, 2, 5, -2, -7, -1], [4.0, 5, 6, 3, 1, 8, 3, 2])
    compressor = comp_op.LowRankDecompMatrixCompressor(
        spec=comp_op.LowRankDecompMatrixCompressor.get_default_hparams()
    )
    op.get_apply_compression_op(tf.Variable(a.astype(np.float32)), compressor)
    return op, a


def test_input_output_op_has_the_peers_defaults():
    values = comp_op.InputOutputCompressionOp.get_default_hparams().values()
    peer = dict(
        name="input_compression",
        compression_frequency=10,
        use_tpu=False,
        compression_option=0,
        begin_compression_step=1000,
        end_compression_step=2000,
        is_b_matrix_trainable=True,
        is_c_matrix_trainable=True,
        is_d_matrix_trainable=True,
        rank=4,
        compress_input=True,
        compress_output=False,
        input_compression_factor=1,
        input_block_size=32,
        output_compression_factor=1,
        output_block_size=1,
    )
    assert {key: values[key] for key in peer} == peer
    # CompressionOp's own defaults are untouched.
    assert comp_op.CompressionOp.get_default_hparams().get("input_block_size") == 1


def test_input_output_op_matmul_is_x_times_a_and_its_factors_have_the_peers_shapes():
    op, a = _peer_io_op()
    assert op.b_matrix_tfvar.shape == (4, 2)
    assert op.c_matrix_tfvar.shape == (6, 4)
    assert op.d_matrix_tfvar.shape == (2, 4)
    x = np.array([1.0, 2, 3, 4] * 3, np.float32)
    # alpha 1 before the first firing: x·A, A as [in, out]
    np.testing.assert_allclose(op.get_apply_matmul(x).numpy(), x @ a, rtol=1e-5)
    assert op.run_update_step(step_number=0)
    b, c, d = (v.numpy() for v in (op.b_matrix_tfvar, op.c_matrix_tfvar, op.d_matrix_tfvar))
    a_hat = _block_diagonal(b, 3) @ c @ _block_diagonal(d, 2)
    weight = 0.5 * a + 0.5 * a_hat
    batch = _matrix(3, 12, seed=9)
    np.testing.assert_allclose(op.get_apply_matmul(x).numpy(), x @ weight, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(
        op.get_apply_matmul(batch).numpy(), batch @ weight, rtol=1e-4, atol=1e-3
    )
    # The weight itself is A's blend as for every op ([in, out] here, x meets its rows).
    np.testing.assert_allclose(op.get_weight().numpy(), weight, rtol=1e-5, atol=1e-4)


def test_input_output_op_takes_trainability_from_the_given_compressor():
    hparams = comp_op.InputOutputCompressionOp.get_default_hparams().parse(
        "compress_input=True,input_block_size=4,input_compression_factor=2"
    )
    compressor_spec = comp_op.LowRankDecompMatrixCompressor.get_default_hparams().parse(
        "is_c_matrix_trainable=False"
    )
    op = comp_op.InputOutputCompressionOp(spec=hparams)
    op.get_apply_compression_op(
        tf.Variable(_matrix(8, 6)), comp_op.LowRankDecompMatrixCompressor(spec=compressor_spec)
    )
    assert op.b_matrix_tfvar.trainable and not op.c_matrix_tfvar.trainable
    assert op.get_spec().compression_option == 9


def test_input_output_op_with_its_default_spec_compresses_the_input_side():
    op = comp_op.InputOutputCompressionOp()
    op.get_apply_compression_op(
        tf.Variable(_matrix(64, 8)),
        comp_op.LowRankDecompMatrixCompressor(
            spec=comp_op.LowRankDecompMatrixCompressor.get_default_hparams()
        ),
    )
    assert op.b_matrix_tfvar.shape == (32, 32) and op.c_matrix_tfvar.shape == (64, 8)
    assert op.d_matrix_tfvar is None


def test_input_output_op_rejects_another_option_and_warns_on_op_level_trainability():
    spec = comp_op.InputOutputCompressionOp.get_default_hparams().parse("compression_option=4")
    with pytest.raises(ValueError, match="compression_option must be 0 or 9"):
        comp_op.InputOutputCompressionOp(spec=spec)
    spec = comp_op.InputOutputCompressionOp.get_default_hparams().parse(
        "is_d_matrix_trainable=False"
    )
    with pytest.warns(UserWarning, match="is_d_matrix_trainable=False has no effect"):
        comp_op.InputOutputCompressionOp(spec=spec)
