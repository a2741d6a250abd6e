"""Every compressible Keras layer kind, nested / subclassed models, per-layer specs, the
method-neutral compression_ratio and the warnings for skipped or growing layers.

Each kind is checked against the stock layer computing with the dense matrix Â its compressed
form stands for (NumPy reshape of the matrix view the layer documents), at alpha 1 (the stock
layer itself) and at alpha 0, and after strip_compression."""

import warnings

import numpy as np
import pytest
import tensorflow as tf

from tf_matcomp import keras as mk
from tf_matcomp.compressors import registry

ONE_SHOT = mk.ONE_SHOT_SCHEDULE
LOW_RANK = f"compression_option=1,rank=200,{ONE_SHOT}"

# (stock layer factory, input shape, input kind)
KINDS = {
    "Dense": (lambda: tf.keras.layers.Dense(6, activation="relu"), (5, 8), "float"),
    "EinsumDense": (
        lambda: tf.keras.layers.EinsumDense("abc,cde->abde", (None, 3, 4), bias_axes="de"),
        (5, 8),
        "float",
    ),
    "Embedding": (lambda: tf.keras.layers.Embedding(12, 8), (5,), "ids"),
    "Conv1D": (lambda: tf.keras.layers.Conv1D(6, 3, padding="causal"), (7, 4), "float"),
    "Conv2D": (lambda: tf.keras.layers.Conv2D(6, 3, strides=2, padding="same"), (7, 7, 4), "float"),
    "Conv3D": (lambda: tf.keras.layers.Conv3D(6, 2), (4, 4, 4, 3), "float"),
    "DepthwiseConv2D": (
        lambda: tf.keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same"),
        (6, 6, 4),
        "float",
    ),
    "SeparableConv2D": (lambda: tf.keras.layers.SeparableConv2D(6, 3), (6, 6, 4), "float"),
}


def _inputs(kind, shape, rng, batch=2):
    if kind == "ids":
        return rng.integers(0, 12, (batch,) + shape).astype(np.int32)
    return rng.standard_normal((batch,) + shape).astype(np.float32)


def _model(name, rng):
    make, shape, kind = KINDS[name]
    inputs = tf.keras.Input(shape, dtype="int32" if kind == "ids" else "float32")
    layer = make()
    model = tf.keras.Model(inputs, layer(inputs))
    for w in layer.weights:  # non-zero biases
        w.assign(rng.standard_normal(w.shape).astype(np.float32) * 0.5)
    return model, layer, _inputs(kind, shape, rng)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_kind_alpha_one_zero_and_strip(name, rng):
    model, stock, x = _model(name, rng)
    compressed = mk.compress_model(model, LOW_RANK)
    (layer,) = mk.compressed_layers(compressed)
    assert type(layer).__name__ == f"Compressed{name}"
    np.testing.assert_allclose(compressed(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-5)

    layer.run_alpha_update(0)
    assert float(layer.alpha) == 0.0
    form, arrays = layer.compression.compressed_form()
    w_hat = form.matrix([tf.constant(a) for a in arrays.values()]).numpy()
    kernel_attr = type(layer).stock_kernel
    kernel = getattr(stock, kernel_attr)
    oracle = stock.__class__.from_config(stock.get_config())
    oracle.build(stock.get_build_config()["input_shape"])
    oracle.set_weights(stock.get_weights())
    getattr(oracle, kernel_attr).assign(w_hat.reshape(kernel.shape))
    expected = oracle(x).numpy()
    np.testing.assert_allclose(compressed(x).numpy(), expected, rtol=1e-4, atol=1e-4)

    stripped = mk.strip_compression(compressed)
    np.testing.assert_allclose(stripped(x).numpy(), expected, rtol=1e-4, atol=1e-4)
    assert not mk.compressed_layers(stripped)


def _mlp_block(name, width=16):
    inputs = tf.keras.Input((width,))
    h = tf.keras.layers.Dense(width, activation="relu", name=f"{name}_dense")(inputs)
    return tf.keras.Model(inputs, tf.keras.layers.Dense(width, name=f"{name}_proj")(h), name=name)


def test_nested_functional_and_sequential_models(rng):
    inner = _mlp_block("inner")
    seq = tf.keras.Sequential(
        [tf.keras.Input((16,)), tf.keras.layers.Dense(16, name="seq_dense")], name="seq"
    )
    inputs = tf.keras.Input((16,))
    outputs = tf.keras.layers.Dense(4, name="top")(seq(inner(inputs)))
    model = tf.keras.Model(inputs, outputs)
    x = rng.standard_normal((3, 16)).astype(np.float32)
    compressed = mk.compress_model(model, LOW_RANK)
    names = sorted(layer.name for layer in mk.compressed_layers(compressed))
    assert names == ["inner_dense", "inner_proj", "seq_dense", "top"]
    np.testing.assert_allclose(compressed(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-5)
    assert not mk.compressed_layers(model)  # the original is untouched
    for layer in mk.compressed_layers(compressed):
        layer.run_alpha_update(0)
    stripped = mk.strip_compression(compressed)
    np.testing.assert_allclose(stripped(x).numpy(), compressed(x).numpy(), rtol=1e-4, atol=1e-4)


class SmallSubclassed(tf.keras.Model):
    def __init__(self):
        super().__init__()
        self.body = [tf.keras.layers.Dense(16, activation="relu") for _ in range(2)]
        self.head = tf.keras.layers.Dense(3)

    def call(self, x):
        for layer in self.body:
            x = layer(x)
        return self.head(x)


def test_subclassed_model_is_compressed_in_place_and_trains(rng):
    model = SmallSubclassed()
    x = rng.standard_normal((16, 8)).astype(np.float32)
    before = model(x).numpy()
    spec = "compression_option=1,rank=200,begin_compression_step=0,compression_frequency=1"
    result = mk.compress_model(model, spec + ",alpha_decrement_value=0.5")
    assert result is model
    assert len(mk.compressed_layers(model)) == 3
    np.testing.assert_allclose(model(x).numpy(), before, rtol=1e-5, atol=1e-5)
    stock_kernels = [w for w in model.trainable_weights if "kernel" in w.name]
    assert all(len(w.shape) == 2 for w in stock_kernels)
    assert len(model.trainable_weights) == len({id(w) for w in model.trainable_weights})
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(
        x, x[:, :3], batch_size=8, epochs=1, verbose=0, callbacks=[mk.CompressionCallback()]
    )
    assert history.history["alpha"] == [0.0]
    stripped = mk.strip_compression(model)
    np.testing.assert_allclose(stripped(x).numpy(), model(x).numpy(), rtol=1e-4, atol=1e-4)


def test_layer_specs_by_name_and_class_and_none(rng):
    inputs = tf.keras.Input((6, 6, 3))
    h = tf.keras.layers.Conv2D(8, 3, name="conv")(inputs)
    h = tf.keras.layers.Flatten()(h)
    h = tf.keras.layers.Dense(16, name="hidden")(h)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(4, name="head")(h))
    compressed = mk.compress_model(
        model,
        f"compression_option=1,rank=400,{ONE_SHOT}",
        layer_specs={
            "head": None,
            tf.keras.layers.Conv2D: f"compression_option=4,rank=4,{ONE_SHOT}",
        },
    )
    kinds = {
        layer.name: layer.spec.compression_option for layer in mk.compressed_layers(compressed)
    }
    assert kinds == {"conv": 4, "hidden": 1}
    only_map = mk.compress_model(model, layer_specs={"hidden": LOW_RANK})
    assert [layer.name for layer in mk.compressed_layers(only_map)] == ["hidden"]


def test_spec_errors_are_the_specs_own():
    model = _mlp_block("m")
    with pytest.raises(ValueError, match="no_such_hparam") as info:
        mk.compress_model(model, "no_such_hparam=3")
    assert "Functional and Sequential" not in str(info.value)
    with pytest.raises(ValueError, match="block_size"):
        mk.compress_model(model, "compression_option=4,block_size=5", layers=["m_dense"])
    with pytest.raises(ValueError, match="compression_ratio"):
        mk.compress_model(model, "compression_option=1", compression_ratio=-2)


def test_skipped_layers_warn_naming_layer_and_why():
    inputs = tf.keras.Input((6, 6, 3))
    h = tf.keras.layers.Conv2D(4, 3, groups=1, name="ok_conv")(inputs)
    h = tf.keras.layers.Conv2D(4, 1, groups=2, name="grouped")(h)
    seq = tf.keras.layers.Reshape((16, 4))(h)
    h = tf.keras.layers.LSTM(4, name="lstm")(seq)
    model = tf.keras.Model(inputs, h)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mk.compress_model(model, f"compression_option=1,rank=200,{ONE_SHOT}")
    skipped = {
        str(w.message).split("'")[1]: str(w.message)
        for w in caught
        if issubclass(w.category, mk.SkippedLayerWarning)
    }
    assert set(skipped) == {"grouped", "lstm_cell"}
    assert "groups=2" in skipped["grouped"] and "LSTMCell" in skipped["lstm_cell"]


def test_growth_warns_and_compression_ratio_reaches_target():
    model = _mlp_block("m", width=32)
    with pytest.warns(mk.LayerGrowthWarning, match="m_dense"):
        mk.compress_model(model, "compression_option=1")  # the default rank (7) grows
    for method in registry.METHODS.values():
        spec = f"compression_option={method.option}"
        with warnings.catch_warnings():
            warnings.simplefilter("error", mk.LayerGrowthWarning)
            compressed = mk.compress_model(model, spec, compression_ratio=4)
        for layer in mk.compressed_layers(compressed):
            form = layer.compression.op.form
            assert form.dense_nbytes() / form.nbytes() >= 4, (method.name, form.label())
            assert form.dense_nbytes() / form.nbytes() < 12, (method.name, form.label())


@pytest.mark.parametrize("name", sorted(KINDS))
def test_kind_round_trips_through_keras_files_in_both_forms(name, tmp_path, rng):
    model, _, x = _model(name, rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mk.LayerGrowthWarning)
        compressed = mk.compress_model(model, f"compression_option=4,rank=4,{ONE_SHOT}")
    mk.compressed_layers(compressed)[0].run_alpha_update(0)
    stripped = mk.strip_compression(compressed)
    assert type(stripped.layers[-1]).__name__ == f"Stripped{name}"
    for form, current in (("training", compressed), ("stripped", stripped)):
        path = str(tmp_path / f"{form}.keras")
        current.save(path)
        loaded = tf.keras.models.load_model(path)
        np.testing.assert_allclose(loaded(x).numpy(), current(x).numpy(), rtol=1e-5, atol=1e-5)
