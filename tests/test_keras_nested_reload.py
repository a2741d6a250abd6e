"""Layers holding compressed sub-layers (MultiHeadAttention's projections, a subclassed
model's layers) reload from `.keras` files in training form (every method, its state exactly
restored) and in stripped form, in Functional, nested and subclassed models; they round-trip
through tf.train.Checkpoint; a holder whose class cannot be reloaded is warned about."""

import warnings

import numpy as np
import pytest
import tensorflow as tf

from tf_matcomp import keras as mk
from tf_matcomp.compressors import registry
from tf_matcomp.keras import sublayer_holders

keras = tf.keras
# One update takes alpha to 0.5: the factors exist and both parts of the blend matter.
HALFWAY = "begin_compression_step=0,compression_frequency=1,alpha_decrement_value=0.5"
SEQ, DIM = 5, 16


@keras.utils.register_keras_serializable(package="test_nested_reload")
class AttentionModel(keras.Model):
    """A subclassed model: attention and a Dense made in __init__."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.attention = keras.layers.MultiHeadAttention(num_heads=2, key_dim=8)
        self.head = keras.layers.Dense(DIM, activation="relu")

    def call(self, x):
        return self.head(self.attention(x, x))


@keras.utils.register_keras_serializable(package="test_nested_reload")
class ListModel(keras.Model):
    """A subclassed model holding its layers in a list."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.body = [keras.layers.Dense(DIM, activation="relu") for _ in range(2)]

    def call(self, x):
        for layer in self.body:
            x = layer(x)
        return x


def _attention_block(name="block"):
    inputs = keras.Input((SEQ, DIM))
    return keras.Model(
        inputs, keras.layers.MultiHeadAttention(num_heads=2, key_dim=8)(inputs, inputs), name=name
    )


def _functional():
    return _attention_block()


def _nested():
    """A Sequential holding a Functional block holding the attention."""
    return keras.Sequential([keras.Input((SEQ, DIM)), _attention_block(), keras.layers.Dense(8)])


def _subclassed():
    model = AttentionModel()
    model(np.zeros((1, SEQ, DIM), np.float32))
    return model


STRUCTURES = {"functional": _functional, "nested": _nested, "subclassed": _subclassed}
METHOD_NAMES = sorted(registry.METHODS)


def _x(rng, batch=3):
    return rng.standard_normal((batch, SEQ, DIM)).astype(np.float32)


def _compress(structure, method_name, schedule=HALFWAY):
    option = registry.method_named(method_name).options[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mk.LayerGrowthWarning)
        model = mk.compress_model(
            STRUCTURES[structure](), f"compression_option={option},{schedule}", compression_ratio=2
        )
    for layer in mk.compressed_layers(model):
        layer.run_alpha_update(0)
    return model


def _state(model):
    """Every compressed layer's variables (A, factors, alpha, steps, counts), by layer."""
    return {
        f"{index}/{v.name}": v.numpy()
        for index, layer in enumerate(mk.compressed_layers(model))
        for v in layer.weights
    }


def _attention_layers(model):
    return [
        layer
        for layer in model._flatten_layers(include_self=True, recursive=True)
        if isinstance(layer, keras.layers.MultiHeadAttention)
    ]


def _assert_same_state(loaded, original):
    expected, got = _state(original), _state(loaded)
    assert len(expected) >= 2 * 5 and sorted(got) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)


@pytest.mark.parametrize("structure", sorted(STRUCTURES))
@pytest.mark.parametrize("method_name", METHOD_NAMES)
def test_training_form_reloads_exactly(structure, method_name, tmp_path, rng):
    model = _compress(structure, method_name)
    (attention,) = _attention_layers(model)
    assert isinstance(attention._query_dense, mk.CompressedEinsumDense)
    assert [float(layer.alpha) for layer in mk.compressed_layers(model)] == [0.5] * len(
        mk.compressed_layers(model)
    )
    x = _x(rng)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())
    _assert_same_state(loaded, model)
    for layer in mk.compressed_layers(loaded):
        assert layer.compression.last_update_step() == 0
    # The reloaded schedule carries on as the original: the next update gives alpha 0.
    for current in (model, loaded):
        for layer in mk.compressed_layers(current):
            layer.run_alpha_update(1)
    _assert_same_state(loaded, model)
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())


@pytest.mark.parametrize("structure", sorted(STRUCTURES))
@pytest.mark.parametrize("method_name", METHOD_NAMES)
def test_stripped_form_reloads(structure, method_name, tmp_path, rng):
    model = _compress(structure, method_name, mk.ONE_SHOT_SCHEDULE)
    stripped = mk.strip_compression(model)
    (attention,) = _attention_layers(stripped)
    assert sublayer_holders.is_holder(attention)
    assert not mk.compressed_layers(stripped)
    x = _x(rng)
    expected = stripped(x).numpy()
    np.testing.assert_allclose(expected, model(x).numpy(), rtol=1e-4, atol=1e-4)
    path = str(tmp_path / "stripped.keras")
    stripped.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded(x).numpy(), expected)
    (reloaded_attention,) = _attention_layers(loaded)
    assert type(reloaded_attention._key_dense) is type(attention._key_dense)


@pytest.mark.parametrize("structure", sorted(STRUCTURES))
def test_checkpoint_round_trip(structure, tmp_path, rng):
    model = _compress(structure, "lowrank")
    model.compile(optimizer="sgd", loss="mse")
    x = _x(rng, batch=8)
    model.fit(x, model(x).numpy() * 0.5, epochs=1, verbose=0, callbacks=[mk.CompressionCallback()])
    prefix = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    fresh = _compress(structure, "lowrank")  # same structure, other factors and alpha
    assert not np.array_equal(fresh(x).numpy(), model(x).numpy())
    status = tf.train.Checkpoint(model=fresh).restore(prefix)
    status.assert_existing_objects_matched().expect_partial()  # fresh has no optimizer yet
    _assert_same_state(fresh, model)
    np.testing.assert_array_equal(fresh(x).numpy(), model(x).numpy())


@pytest.mark.parametrize("method_name", ["lowrank", "kmeans"])
def test_layers_held_in_a_list_reload(method_name, tmp_path, rng):
    model = ListModel()
    x = _x(rng)
    model(x)
    option = registry.method_named(method_name).options[0]
    mk.compress_model(model, f"compression_option={option},{HALFWAY}", compression_ratio=2)
    for layer in mk.compressed_layers(model):
        layer.run_alpha_update(0)
    assert model._compressed_paths == ["body[0]", "body[1]"]
    path = str(tmp_path / "list.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert all(isinstance(layer, mk.CompressedDense) for layer in loaded.body)
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())
    _assert_same_state(loaded, model)


class UnregisteredHolder(keras.layers.Layer):
    """A layer holding a Dense, its class not registered for deserialization."""

    def build(self, input_shape):
        self.inner = keras.layers.Dense(DIM)
        self.inner.build(input_shape)

    def call(self, x):
        return self.inner(x)


def test_holder_of_an_unregistered_class_is_warned_about():
    inputs = keras.Input((DIM,))
    model = keras.Model(inputs, UnregisteredHolder(name="holder")(inputs))
    with pytest.warns(mk.NotReloadableWarning, match="'holder'.*will not reload"):
        compressed = mk.compress_model(model, "compression_option=1", compression_ratio=2)
    holder = compressed.get_layer("holder")
    assert isinstance(holder.inner, mk.CompressedDense) and sublayer_holders.is_holder(holder)


def test_a_sublayer_not_recreated_is_a_clear_error(tmp_path):
    """A recorded sub-layer that from_config() + build() does not make again is named."""
    model = _compress("functional", "lowrank")
    (attention,) = _attention_layers(model)
    config = attention.get_config()
    config[sublayer_holders._CONFIG_KEY]["_missing_dense"] = config[sublayer_holders._CONFIG_KEY][
        "_query_dense"
    ]
    rebuilt = type(attention).from_config(config)
    with pytest.raises(ValueError, match="'_missing_dense' was not created again"):
        rebuilt.build_from_config(attention.get_build_config())
