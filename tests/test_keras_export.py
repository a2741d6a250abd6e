"""strip_compression and the stripped layers: NumPy oracles, the compressed model at alpha=0,
.keras round trip, model.export() and TFLite conversion, sizes before and after."""

import os

import numpy as np
import pytest
import tensorflow as tf

from tf_matcomp import keras as mk
from tf_matcomp.compressors import KMeansForm, LowRankForm, form_from_config
from tf_matcomp.keras.stripped_layers import StrippedConv2D, StrippedDense

import method_contract as contract

ONE_SHOT = mk.ONE_SHOT_SCHEDULE


def _stripped_model(layer, input_shape):
    inputs = tf.keras.Input(input_shape)
    return tf.keras.Model(inputs, layer(inputs))


def test_low_rank_dense_computes_x_b_c(rng):
    m, n, k = 20, 12, 3
    b, c = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    bias = rng.standard_normal(n)
    layer = StrippedDense(n, LowRankForm(m, n, k).get_config())
    model = _stripped_model(layer, (m,))
    layer.set_compressed({"b_matrix": b, "c_matrix": c}, bias)
    x = rng.standard_normal((5, m)).astype(np.float32)
    np.testing.assert_allclose(model(x).numpy(), x @ b @ c + bias, rtol=1e-5, atol=1e-5)
    assert LowRankForm(m, n, k).factored_is_cheaper()


def test_kmeans_dense_computes_with_codebook(rng):
    m, n, clusters, block = 16, 8, 5, 2
    codebook = rng.standard_normal((clusters, block)).astype(np.float32)
    codes = rng.integers(0, clusters, (m, n // block)).astype(np.uint8)
    layer = StrippedDense(n, KMeansForm(m, n, clusters, block).get_config(), use_bias=False)
    model = _stripped_model(layer, (m,))
    layer.set_compressed({"codebook": codebook, "codes": codes}, None)
    x = rng.standard_normal((3, m)).astype(np.float32)
    np.testing.assert_allclose(
        model(x).numpy(), x @ codebook[codes].reshape(m, n), rtol=1e-5, atol=1e-5
    )
    assert {w.name: str(np.dtype(w.dtype)) for w in layer.weights}["codes"] == "uint8"


@pytest.mark.parametrize("k", [2, 30])  # factored conv, and the rebuilt kernel when not cheaper
def test_low_rank_conv_matches_dense_kernel_conv(rng, k):
    cin, filters = 4, 6
    m = 9 * cin
    k = min(k, m, filters)
    b, c = rng.standard_normal((m, k)), rng.standard_normal((k, filters))
    bias = rng.standard_normal(filters)
    layer = StrippedConv2D(
        filters, (3, 3), LowRankForm(m, filters, k).get_config(), padding="same", strides=(2, 1)
    )
    x = rng.standard_normal((2, 7, 7, cin)).astype(np.float32)
    layer(x)
    layer.set_compressed({"b_matrix": b, "c_matrix": c}, bias)
    kernel = (b @ c).reshape(3, 3, cin, filters).astype(np.float32)
    expected = tf.nn.conv2d(x, kernel, (1, 2, 1, 1), "SAME").numpy() + bias
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-4, atol=1e-4)


def test_unknown_form_kind_is_a_value_error():
    with pytest.raises(ValueError, match="form: unknown kind"):
        form_from_config({"kind": "nope", "rows": 1, "cols": 1})


# --- end to end: a compressed model at alpha = 0, stripped --------------------------------

METHODS = {  # name -> spec
    "low_rank": "compression_option=1,rank=400",
    "simhash": "compression_option=2,rank=400",
    "kmeans": "compression_option=4,rank=8,block_size=2",
    "dictionary": "compression_option=3,rank=400",
}


def _trained_at_alpha_zero(spec, rng):
    inputs = tf.keras.Input((24,))
    hidden = tf.keras.layers.Dense(16, activation="relu", name="hidden")(inputs)
    conv_in = tf.keras.layers.Reshape((4, 4, 1))(hidden)
    conv = tf.keras.layers.Conv2D(8, 3, padding="same", name="conv")(conv_in)
    outputs = tf.keras.layers.Dense(4, name="out")(tf.keras.layers.Flatten()(conv))
    dense = tf.keras.Model(inputs, outputs)
    compressed = mk.compress_model(dense, f"{spec},{ONE_SHOT}", layers=["hidden", "out", "conv"])
    for layer in mk.compressed_layers(compressed):
        layer.run_alpha_update(0)
        assert float(layer.alpha) == 0.0
    return compressed, rng.standard_normal((6, 24)).astype(np.float32)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_stripped_equals_compressed_model_at_alpha_zero(method, rng):
    compressed, x = _trained_at_alpha_zero(METHODS[method], rng)
    stripped = mk.strip_compression(compressed)
    assert not mk.compressed_layers(stripped)
    np.testing.assert_allclose(stripped(x).numpy(), compressed(x).numpy(), rtol=2e-4, atol=2e-4)
    before, after = mk.model_size(compressed), mk.model_size(stripped)
    assert after.bytes < before.bytes
    rows = {r.name: r for r in mk.compression_report(stripped)}
    assert set(rows) == {"hidden", "out", "conv"}
    assert all(r.kind == "stripped" for r in rows.values())


def test_strip_refuses_a_model_still_blending(rng):
    dense = tf.keras.Sequential([tf.keras.Input((8,)), tf.keras.layers.Dense(4, name="d")])
    compressed = mk.compress_model(dense, "compression_option=1,rank=200")
    with pytest.raises(ValueError, match="alpha=1"):
        mk.strip_compression(compressed)


def test_stripped_round_trip_export_and_tflite(tmp_path, rng):
    compressed, x = _trained_at_alpha_zero(METHODS["low_rank"], rng)
    stripped = mk.strip_compression(compressed)
    expected = stripped(x).numpy()

    path = os.path.join(tmp_path, "stripped.keras")
    stripped.save(path)
    loaded = tf.keras.models.load_model(path)
    np.testing.assert_allclose(loaded(x).numpy(), expected, rtol=1e-6, atol=1e-6)

    saved_model = os.path.join(tmp_path, "saved_model")
    stripped.export(saved_model)
    served = tf.saved_model.load(saved_model)
    np.testing.assert_allclose(served.serve(x).numpy(), expected, rtol=1e-5, atol=1e-5)

    flatbuffer = tf.lite.TFLiteConverter.from_saved_model(saved_model).convert()
    got, _ = contract.run_tflite(flatbuffer, x)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_report_counts_low_rank_bytes_exactly(rng):
    dense = tf.keras.Sequential([tf.keras.Input((64,)), tf.keras.layers.Dense(32, name="d")])
    compressed = mk.compress_model(dense, f"compression_option=1,rank=400,{ONE_SHOT}")
    mk.compressed_layers(compressed)[0].run_alpha_update(0)
    (row,) = mk.compression_report(compressed)
    k = 8  # ceil(min(64, 32) · 100 / 400)
    assert row.k == f"k={k}"
    assert row.bytes_before == 4 * 64 * 32 and row.bytes_after == 4 * k * (64 + 32)
    a = dense.get_layer("d").kernel.numpy()
    s = np.linalg.svd(a, compute_uv=False)
    oracle = np.sqrt(np.sum(s[k:] ** 2)) / np.linalg.norm(a)  # truncated-SVD error
    assert row.relative_error == pytest.approx(oracle, rel=0.02)
    stripped = mk.strip_compression(compressed)
    assert mk.model_size(stripped).params == k * (64 + 32) + 32
