"""Deployable models: stock-Keras strip forms that load without tf_matcomp, TFLite with builtin
ops only (sizes against the dense model, outputs against the stripped Keras model), the export
guard, no optimizer state; the callback's warnings and TensorBoard scalars; a small transformer
and MobileNetV2 compressed, trained and stripped."""

import glob
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import tensorflow as tf

from tf_matcomp import keras as mk

import method_contract as contract
import simhash_oracle

ONE_SHOT = mk.ONE_SHOT_SCHEDULE
RAMP = "begin_compression_step=0,compression_frequency=1,alpha_decrement_value=0.5"


def _one_shot(model, spec, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mk.LayerGrowthWarning)
        compressed = mk.compress_model(model, f"{spec},{ONE_SHOT}", **kwargs)
    for layer in mk.compressed_layers(compressed):
        layer.run_alpha_update(0)
    return compressed


def _mixed_model():
    ids = tf.keras.Input((6,), dtype="int32")
    h = tf.keras.layers.Embedding(40, 16, name="embed")(ids)
    h = tf.keras.layers.EinsumDense("abc,cd->abd", (None, 16), bias_axes="d", name="ein")(h)
    h = tf.keras.layers.Conv1D(16, 3, padding="same", activation="relu", name="conv")(h)
    h = tf.keras.layers.GlobalAveragePooling1D()(h)
    return tf.keras.Model(ids, tf.keras.layers.Dense(16, name="head")(h))


_LOAD_WITHOUT_TF_MATCOMP = textwrap.dedent("""
    import sys, numpy as np, tensorflow as tf
    model = tf.keras.models.load_model(sys.argv[1])
    assert not any(name.startswith("tf_matcomp") for name in sys.modules)
    np.save(sys.argv[3], model(np.load(sys.argv[2])).numpy())
    print("ok", getattr(model, "optimizer", None))
""")


@pytest.mark.filterwarnings("ignore::tf_matcomp.keras.NoCallbackWarning")
def test_low_rank_strips_to_stock_layers_that_load_without_tf_matcomp(tmp_path, rng):
    compressed = _one_shot(_mixed_model(), "compression_option=1,rank=400")
    assert len(mk.compressed_layers(compressed)) == 4
    compressed.compile(optimizer="adam", loss="mse")
    x = rng.integers(0, 40, (3, 6)).astype(np.int32)
    compressed.fit(x, np.zeros((3, 16)), verbose=0)  # gives the compressed model an optimizer
    stripped = mk.strip_compression(compressed)
    assert getattr(stripped, "optimizer", None) is None
    for name in ("embed", "ein", "conv", "head"):
        layer = stripped.get_layer(name)
        assert isinstance(layer, tf.keras.Sequential), name
        assert all(type(sub).__module__.startswith("keras") for sub in layer.layers)
    expected = stripped(x).numpy()
    np.testing.assert_allclose(expected, compressed(x).numpy(), rtol=1e-4, atol=1e-4)
    assert {r.kind for r in mk.compression_report(stripped)} == {"stripped"}
    path, x_path, y_path = (str(tmp_path / n) for n in ("m.keras", "x.npy", "y.npy"))
    stripped.save(path)
    np.save(x_path, x)
    script = tmp_path / "load.py"
    script.write_text(_LOAD_WITHOUT_TF_MATCOMP)
    done = subprocess.run(
        [sys.executable, str(script), path, x_path, y_path],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert done.returncode == 0 and "ok None" in done.stdout, done.stderr[-3000:]
    np.testing.assert_allclose(np.load(y_path), expected, rtol=1e-5, atol=1e-5)


# method -> (layer width, spec). simhash's stripped layers regenerate R at run time with about two
# hundred builtin ops (~33 KB of graph per layer in the .tflite), so its layers must be large
# for that fixed cost to stay small next to a ~60x smaller kernel.
TFLITE_CASES = {
    "lowrank": (96, "compression_option=1,rank=800"),
    "kmeans": (96, "compression_option=4,rank=16,block_size=2"),
    "dictionary": (96, "compression_option=3,rank=400"),
    "simhash": (1024, "compression_option=2,rank=200"),
}


@pytest.mark.parametrize("method", sorted(TFLITE_CASES))
def test_tflite_builtins_smaller_by_half_the_ratio_and_equal(method, tmp_path, rng):
    width, spec = TFLITE_CASES[method]
    inputs = tf.keras.Input((width,))
    h = tf.keras.layers.Dense(width, activation="relu", name="hidden")(inputs)
    dense = tf.keras.Model(inputs, tf.keras.layers.Dense(width, name="out")(h))
    stripped = mk.strip_compression(_one_shot(dense, spec))
    ratio = mk.compression_ratio(stripped)
    assert ratio > 2
    x = rng.standard_normal((4, width)).astype(np.float32)
    dense_size = len(contract.exported_tflite(dense, str(tmp_path / "dense")))
    flatbuffer = contract.exported_tflite(stripped, str(tmp_path / "stripped"))
    assert dense_size / len(flatbuffer) >= ratio / 2, (dense_size, len(flatbuffer), ratio)
    got, ops = contract.run_tflite(flatbuffer, x)
    assert not any("FLEX" in op or "CUSTOM" in op for op in ops), ops
    np.testing.assert_allclose(got, stripped(x).numpy(), rtol=1e-4, atol=1e-4)


# Every stripped simhash kind: kind -> (stock layer factory, input shape, input kind, rank). Each
# stripped simhash layer regenerates R at run time from builtin ops (about 33-36 KB of graph per
# layer, whatever its size), so these kernels are ~1 MB: the fixed cost stays below dense/ratio.
# DepthwiseConv2D's matrix [kh·kw, cin·mult] has 9 rows: its ratio stays below ~6 (a scale
# per column) and only cin·mult ≳ 5000 would carry the fixed cost, too large for a test, so
# it is held to builtin ops and equal outputs only.
SIZE_NOT_CHECKED = {"DepthwiseConv2D"}
SIMHASH_TFLITE_KINDS = {
    "Dense": (lambda: tf.keras.layers.Dense(512), (512,), "float", 50),
    "EinsumDense": (
        lambda: tf.keras.layers.EinsumDense("abc,cde->abde", (None, 8, 64), bias_axes="de"),
        (4, 512),
        "float",
        50,
    ),
    "Embedding": (lambda: tf.keras.layers.Embedding(512, 512), (4,), "ids", 50),
    "Conv1D": (lambda: tf.keras.layers.Conv1D(512, 3), (6, 192), "float", 50),
    "Conv2D": (lambda: tf.keras.layers.Conv2D(512, 3), (5, 5, 64), "float", 50),
    "Conv3D": (lambda: tf.keras.layers.Conv3D(512, 2), (3, 3, 3, 64), "float", 50),
    "DepthwiseConv2D": (
        lambda: tf.keras.layers.DepthwiseConv2D(3, depth_multiplier=8),
        (4, 4, 64),
        "float",
        50,
    ),
    "SeparableConv2D": (lambda: tf.keras.layers.SeparableConv2D(512, 3), (4, 4, 512), "float", 50),
}


@pytest.mark.parametrize("name", sorted(SIMHASH_TFLITE_KINDS))
def test_stripped_simhash_kind_converts_with_builtins_smaller_and_equal(name, tmp_path, rng):
    make, shape, kind, rank = SIMHASH_TFLITE_KINDS[name]
    inputs = tf.keras.Input(shape, dtype="int32" if kind == "ids" else "float32")
    dense = tf.keras.Model(inputs, make()(inputs))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mk.LayerGrowthWarning)
        compressed = mk.compress_model(
            dense, f"compression_option=2,rank={rank},{mk.ONE_SHOT_SCHEDULE}"
        )
    (layer,) = mk.compressed_layers(compressed)
    layer.run_alpha_update(0)
    stripped = mk.strip_compression(compressed)
    assert type(stripped.layers[-1]).__name__ == f"Stripped{name}"
    ratio = mk.compression_ratio(stripped)
    dense_size = len(contract.exported_tflite(dense, str(tmp_path / "dense")))
    flatbuffer = contract.exported_tflite(stripped, str(tmp_path / "stripped"))
    if name not in SIZE_NOT_CHECKED:
        assert dense_size / len(flatbuffer) >= ratio / 2, (dense_size, len(flatbuffer), ratio)
    if kind == "ids":
        x = rng.integers(0, 512, (2,) + shape).astype(np.int32)
    else:
        x = rng.standard_normal((2,) + shape).astype(np.float32)
    got, ops = contract.run_tflite(flatbuffer, x)
    assert not any("FLEX" in op or "CUSTOM" in op for op in ops), ops
    expected = stripped(x).numpy()
    scale = np.abs(expected).max()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * scale)


def _tensor_names(flatbuffer: bytes) -> list:
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    return [t.name for subgraph in model.subgraphs for t in subgraph.tensors if t.name]


@pytest.mark.parametrize("spec", ["compression_option=2,rank=50", "compression_option=1,rank=400"])
def test_to_tflite_strips_converts_with_builtins_and_drops_the_names(spec, tmp_path, rng):
    inputs = tf.keras.Input((256,))
    dense = tf.keras.Model(inputs, tf.keras.layers.Dense(256, name="out")(inputs))
    compressed = _one_shot(dense, spec)  # still in training form: to_tflite strips it
    stripped = mk.strip_compression(compressed)
    path = str(tmp_path / "m.tflite")
    flatbuffer = mk.to_tflite(compressed, path)
    assert open(path, "rb").read() == flatbuffer
    plain = contract.exported_tflite(stripped, str(tmp_path / "plain"))
    assert _tensor_names(plain) and not _tensor_names(flatbuffer)
    assert len(flatbuffer) < len(plain)
    x = rng.standard_normal((3, 256)).astype(np.float32)
    got, ops = contract.run_tflite(flatbuffer, x)
    assert not any("FLEX" in op or "CUSTOM" in op for op in ops), ops
    np.testing.assert_allclose(got, stripped(x).numpy(), rtol=1e-4, atol=1e-4)
    runner = tf.lite.Interpreter(model_content=flatbuffer).get_signature_runner()
    (name,) = runner.get_input_details()
    (output,) = runner(**{name: x}).values()
    np.testing.assert_array_equal(output, got)


def test_to_tflite_refuses_a_missing_directory(tmp_path):
    model = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="`path`.*does not exist"):
        mk.to_tflite(model, str(tmp_path / "no" / "m.tflite"))


def test_export_of_training_form_refuses_with_a_message(tmp_path):
    dense = tf.keras.Sequential([tf.keras.Input((8,)), tf.keras.layers.Dense(4, name="d")])
    compressed = mk.compress_model(dense, "compression_option=1,rank=200")
    with pytest.raises(ValueError, match="strip_compression"):
        compressed.export(str(tmp_path / "sm"), verbose=False)


def _tiny(rng):
    x = rng.standard_normal((16, 8)).astype(np.float32)
    model = tf.keras.Sequential([tf.keras.Input((8,)), tf.keras.layers.Dense(8, name="d")])
    model = mk.compress_model(model, f"compression_option=1,rank=400,{RAMP}")
    model.compile(optimizer="sgd", loss="mse")
    return model, x


def test_training_without_the_callback_warns_once(rng):
    model, x = _tiny(rng)
    type(mk.compressed_layers(model)[0])._warned_no_callback.clear()
    with pytest.warns(mk.NoCallbackWarning, match="'d'.*CompressionCallback"):
        model.fit(x, x, batch_size=4, epochs=1, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", mk.NoCallbackWarning)
        model.fit(x, x, batch_size=4, epochs=1, verbose=0, callbacks=[mk.CompressionCallback()])


def _event_tags(log_dir):
    tags = set()
    for path in glob.glob(os.path.join(log_dir, "train", "events*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    return tags


class _LogsRecorder(tf.keras.callbacks.Callback):
    """Records the keys of the epoch logs it sees (what TensorBoard would write)."""

    def __init__(self):
        super().__init__()
        self.keys = set()

    def on_epoch_end(self, epoch, logs=None):
        self.keys.update(logs or {})


@pytest.mark.parametrize("recorder_first", [True, False])
def test_callbacks_before_the_compression_callback_see_its_scalars(recorder_first, rng):
    model, x = _tiny(rng)
    recorder = _LogsRecorder()
    callbacks = [recorder, mk.CompressionCallback()]
    model.fit(
        x, x, batch_size=4, epochs=1, verbose=0, callbacks=callbacks[:: 1 if recorder_first else -1]
    )
    assert {"alpha", "compression_ratio"} <= recorder.keys


@pytest.mark.parametrize("tensorboard_first", [True, False])
def test_tensorboard_gets_the_scalars_whatever_the_order(tensorboard_first, tmp_path, rng):
    pytest.importorskip("tensorboard")
    model, x = _tiny(rng)
    callbacks = [tf.keras.callbacks.TensorBoard(str(tmp_path)), mk.CompressionCallback()]
    model.fit(
        x,
        x,
        batch_size=4,
        epochs=2,
        verbose=0,
        callbacks=callbacks[:: 1 if tensorboard_first else -1],
    )
    assert {"epoch_alpha", "epoch_compression_ratio"} <= _event_tags(str(tmp_path))


def _fit_to_alpha_zero(model, x, y, loss):
    """Two steps: the ramp takes alpha 1 → 0.5 → 0."""
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss=loss)
    history = model.fit(
        x, y, batch_size=len(x) // 2, epochs=1, verbose=0, callbacks=[mk.CompressionCallback()]
    )
    assert history.history["alpha"] == [0.0]
    assert np.isfinite(history.history["loss"][0])


def test_small_transformer_compresses_trains_and_strips(rng):
    ids = tf.keras.Input((8,), dtype="int32")
    h = tf.keras.layers.Embedding(50, 32, name="embed")(ids)
    attention = tf.keras.layers.MultiHeadAttention(4, 8, name="mha")
    h = tf.keras.layers.LayerNormalization()(h + attention(h, h))
    ffn = tf.keras.layers.Dense(64, activation="relu", name="ffn_1")(h)
    h = tf.keras.layers.LayerNormalization()(h + tf.keras.layers.Dense(32, name="ffn_2")(ffn))
    logits = tf.keras.layers.Dense(50, name="logits")(tf.keras.layers.GlobalAveragePooling1D()(h))
    model = tf.keras.Model(ids, logits)
    x = rng.integers(0, 50, (8, 8)).astype(np.int32)
    compressed = mk.compress_model(model, f"compression_option=1,{RAMP}", compression_ratio=2)
    names = {layer.name for layer in mk.compressed_layers(compressed)}
    assert {"query", "key", "value", "attention_output", "embed", "ffn_1", "ffn_2"} <= names
    np.testing.assert_allclose(compressed(x).numpy(), model(x).numpy(), rtol=1e-4, atol=1e-4)
    loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    _fit_to_alpha_zero(compressed, x, x[:, 0], loss)
    stripped = mk.strip_compression(compressed)
    np.testing.assert_allclose(stripped(x).numpy(), compressed(x).numpy(), rtol=1e-4, atol=1e-4)


def test_mobilenet_v2_compresses_trains_and_strips(rng):
    model = tf.keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=5
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mk.LayerGrowthWarning)
        compressed = mk.compress_model(
            model, f"compression_option=1,update_option=1,{RAMP}", compression_ratio=2
        )
    kinds = {type(layer).__name__ for layer in mk.compressed_layers(compressed)}
    assert kinds == {"CompressedConv2D", "CompressedDepthwiseConv2D", "CompressedDense"}
    x = rng.standard_normal((4, 32, 32, 3)).astype(np.float32)
    _fit_to_alpha_zero(compressed, x, np.arange(4) % 5, "sparse_categorical_crossentropy")
    stripped = mk.strip_compression(compressed)
    np.testing.assert_allclose(
        stripped(x, training=False).numpy(),
        compressed(x, training=False).numpy(),
        rtol=1e-3,
        atol=1e-4,
    )
    assert mk.compression_ratio(stripped) > 1.2


def _oracle_hash(rows, cols, seed):
    """mix(key + (rows[i]·2³² + cols[j])·G) as uint64 [len(rows), len(cols)], in NumPy."""
    with np.errstate(over="ignore"):
        key = simhash_oracle.mix64(np.array([seed], np.uint64) + simhash_oracle.GOLDEN)
        counters = (rows.astype(np.uint64)[:, None] << np.uint64(32)) | cols.astype(np.uint64)
        return simhash_oracle.mix64(key + counters * simhash_oracle.GOLDEN)


@pytest.mark.parametrize("seed", [0, 7, 2**40 + 3])
def test_simhash_builtin_ops_match_the_definition_at_any_index(seed, rng):
    """Both projections' TFLite forms on random indices up to 2³¹ − 1 (every carry of the
    uint32 word arithmetic exercised) against NumPy's uint64 definition."""
    from tf_matcomp import constants
    from tf_matcomp.compressors import simhash_builtin_ops

    top = 2**31 - 1
    rows = np.concatenate([[0, top], rng.integers(0, top, 30)]).astype(np.int32)
    cols = np.concatenate([[0, top], rng.integers(0, top, 21)]).astype(np.int32)
    h = _oracle_hash(rows, cols, seed)
    byte_sum = sum((h >> np.uint64(8 * i)) & np.uint64(0xFF) for i in range(8)).astype(np.int64)
    integers = (byte_sum - constants.BYTE_SUM_OFFSET).astype(np.float32)
    got = simhash_builtin_ops.projection(tf.constant(rows), tf.constant(cols), seed, tf.float32)
    np.testing.assert_array_equal(got, integers * np.float32(constants.PROJECTION_SCALE))

    num_rows = 1000  # L = 1024
    block, within = cols // 1024, cols % 1024
    negative = (_oracle_hash(rows, block, seed) >> np.uint64(63)).astype(np.int64)
    parity = np.vectorize(lambda x: bin(int(x)).count("1") % 2)(rows[:, None] & within[None, :])
    got = simhash_builtin_ops.hadamard_projection(
        tf.constant(rows), tf.constant(cols), seed, tf.float32, num_rows
    )
    np.testing.assert_array_equal(got, 1 - 2 * (negative ^ parity))


def test_simhash_builtin_ops_are_bit_identical_to_the_generator(rng):
    from tf_matcomp.compressors import simhash_builtin_ops
    from tf_matcomp.ops.composites import counter_rng
    from tf_matcomp.ops.composites import simhash as simhash_composite

    for seed in (0, 7, 2**40 + 3):
        got = simhash_builtin_ops.projection(tf.range(37), tf.range(19), seed, tf.float32)
        np.testing.assert_array_equal(got, counter_rng.projection(37, 19, seed, tf.float32))
    signs = tf.constant(rng.integers(0, 256, (5, 3)).astype(np.uint8))
    np.testing.assert_array_equal(
        simhash_builtin_ops.unpack_signs(signs, 21, tf.float32),
        simhash_composite.unpack_signs(signs, 21, tf.float32),
    )
