"""The compressed layers' product in each phase of alpha (A alone at 1, the form's own product at
0, the blend or the split product in between) against a NumPy oracle of x·(α·A + (1 − α)·B·C),
values and gradients, eagerly, in tf.function and under XLA; and the CompressionCallback calling
the updates only at the steps where a schedule fires."""

import numpy as np
import pytest
import tensorflow as tf

from conftest import run_in_mode
from tf_matcomp import keras as mk

IN, OUT = 48, 40  # rank=800: k = ceil(40 · 100 / 800) = 5
SPEC = "compression_option=1,rank=800,update_option=3"


def _layer(rng):
    inputs = tf.keras.Input((IN,))
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(OUT, name="dense")(inputs))
    compressed = mk.compress_model(model, SPEC)
    (layer,) = mk.compressed_layers(compressed)
    op = layer.compression.op
    op.a_matrix_tfvar.assign(rng.standard_normal((IN, OUT)).astype(np.float32))
    for variable in op.factor_variables:  # B, C: any values (the product must use them)
        variable.assign(rng.standard_normal(variable.shape).astype(np.float32))
    layer.bias.assign(rng.standard_normal(OUT).astype(np.float32))
    return layer


def _oracle(x, a, b, c, bias, alpha):
    """y = x·W + bias and the gradients of sum(y²) w.r.t. x, A, B, C, in float64."""
    x, a, b, c, bias = (np.asarray(t, np.float64) for t in (x, a, b, c, bias))
    w = alpha * a + (1 - alpha) * b @ c
    y = x @ w + bias
    dy = 2 * y
    dw = x.T @ dy
    return y, {
        "x": dy @ w.T,
        "a": alpha * dw,
        "b": (1 - alpha) * dw @ c.T,
        "c": (1 - alpha) * b.T @ dw,
    }


@pytest.mark.parametrize("mode", ["eager", "function", "jit"])
@pytest.mark.parametrize("rows", [4, 200], ids=["split", "blend"])
@pytest.mark.parametrize("alpha", [1.0, 0.5, 0.0])
def test_product_and_gradients_match_the_blended_weight(alpha, rows, mode, rng):
    layer = _layer(rng)
    op = layer.compression.op
    op.alpha.assign(alpha)
    form = op.form
    # 4 rows: α·(x·A) + (1 − α)·(x·B·C) is cheaper than forming W; 200 rows: the blend is.
    assert layer._split_is_cheaper(tf.zeros((rows, IN)), form) == (rows == 4)
    b_var, c_var = op.factor_variables
    x = tf.constant(rng.standard_normal((rows, IN)).astype(np.float32))

    def run(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * y)
        grads = tape.gradient(loss, [x, op.a_matrix_tfvar, b_var, c_var])
        return y, [
            tf.zeros_like(v) if g is None else g
            for g, v in zip(grads, [x, op.a_matrix_tfvar, b_var, c_var])
        ]

    y, grads = run_in_mode(mode, run, x)
    expected, expected_grads = _oracle(
        x, op.a_matrix_tfvar.numpy(), b_var.numpy(), c_var.numpy(), layer.bias.numpy(), alpha
    )
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-4, atol=1e-4)
    for name, grad in zip(["x", "a", "b", "c"], grads):
        scale = max(1.0, np.abs(expected_grads[name]).max())
        np.testing.assert_allclose(
            grad.numpy(), expected_grads[name], atol=1e-4 * scale, err_msg=name
        )


def test_split_needs_known_rows_and_a_low_rank_form(rng):
    layer = _layer(rng)
    form = layer.compression.op.form
    assert not layer._split_is_cheaper(tf.keras.Input((IN,), batch_size=None), form)
    simhash = mk.compress_model(
        tf.keras.Sequential([tf.keras.Input((IN,)), tf.keras.layers.Dense(OUT)]),
        "compression_option=2,rank=400,update_option=3",
    )
    (simhash_layer,) = mk.compressed_layers(simhash)
    assert not simhash_layer._split_is_cheaper(tf.zeros((2, IN)), simhash_layer.compression.op.form)


def test_callback_runs_updates_only_at_firing_steps(rng):
    inputs = tf.keras.Input((IN,))
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(OUT, name="dense")(inputs))
    spec = "compression_option=1,rank=800,begin_compression_step=2,compression_frequency=3"
    compressed = mk.compress_model(model, spec + ",alpha_decrement_value=0.25")
    compressed.compile(optimizer="sgd", loss="mse")
    callback = mk.CompressionCallback()
    calls = []

    class Spy(tf.keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            update = callback._tf_update

            def counted(step):
                calls.append(int(step))
                return update(step)

            callback._tf_update = counted

    x = rng.standard_normal((12, IN)).astype(np.float32)
    y = rng.standard_normal((12, OUT)).astype(np.float32)
    compressed.fit(x, y, batch_size=1, epochs=1, verbose=0, callbacks=[callback, Spy()])
    (layer,) = mk.compressed_layers(compressed)
    expected = layer.compression.op.schedule.firing_steps(range(12))
    assert expected == [2, 5, 8, 11]
    assert calls == expected  # the steps between firings call nothing
    assert float(layer.alpha) == 0.0
    assert len(callback.update_seconds) == len(expected)
