"""CompressedDense / CompressedConv2D, compress_model and CompressionCallback against NumPy
oracles: the blend, the schedule driven by model.fit (update options 0, 1, 2), XLA,
.keras save/load mid-schedule, bad input, and tf_keras where installed."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tf_matcomp import keras as mk

SCHEDULE = "begin_compression_step=0,compression_frequency=5,alpha_decrement_value=0.25"


def _svd_factors(a, k):
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    return u[:, :k] * np.sqrt(s[:k]), np.sqrt(s[:k])[:, None] * vt[:k]


def _data(rng, n=64, features=12, classes=3):
    x = rng.standard_normal((n, features)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0).astype(np.int64)
    return x, y % classes


def _mlp(features=12, hidden=16, classes=3, seed=0):
    init = tf.keras.initializers.GlorotUniform
    inputs = tf.keras.Input((features,))
    h = tf.keras.layers.Dense(
        hidden, activation="relu", name="hidden", kernel_initializer=init(seed)
    )(inputs)
    out = tf.keras.layers.Dense(classes, name="out", kernel_initializer=init(seed + 1))(h)
    return tf.keras.Model(inputs, out)


def _fit(model, x, y, steps, jit_compile="auto"):
    model.compile(
        optimizer=tf.keras.optimizers.SGD(0.05),
        jit_compile=jit_compile,
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    callback = mk.CompressionCallback()
    history = model.fit(
        x[: 8 * steps],
        y[: 8 * steps],
        batch_size=8,
        epochs=1,
        verbose=0,
        shuffle=False,
        callbacks=[callback],
    )
    return callback, history


def test_alpha_one_is_the_dense_layer(rng):
    dense = _mlp()
    compressed = mk.compress_model(dense, f"compression_option=1,rank=200,{SCHEDULE}")
    x, _ = _data(rng)
    np.testing.assert_allclose(compressed(x).numpy(), dense(x).numpy(), rtol=1e-6, atol=1e-6)
    assert isinstance(compressed.get_layer("hidden"), mk.CompressedDense)
    assert float(compressed.get_layer("hidden").alpha) == 1.0


def test_blend_after_first_firing_matches_numpy(rng):
    layer = mk.CompressedDense(6, spec=f"compression_option=1,rank=200,{SCHEDULE}")
    x = rng.standard_normal((4, 10)).astype(np.float32)
    layer(x)
    a = layer.kernel.numpy()
    for step in range(5):  # fires at step 4 (last −1 + frequency 5 <= 4)
        layer.run_alpha_update(step)
    assert float(layer.alpha) == 0.75
    b, c = _svd_factors(a, 3)  # k = ceil(6 · 100 / 200)
    w = 0.75 * a + 0.25 * (b @ c)
    np.testing.assert_allclose(layer(x).numpy(), x @ w + layer.bias.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("update_option", [0, 1, 2])
def test_fit_drives_the_schedule(update_option, rng):
    x, y = _data(rng)
    model = mk.compress_model(
        _mlp(), f"compression_option=1,rank=200,update_option={update_option},{SCHEDULE}"
    )
    callback, history = _fit(model, x, y, steps=8)
    # Steps 0..7 run; updates fire at step 4 only (next due at 9).
    assert [float(l.alpha) for l in mk.compressed_layers(model)] == [0.75, 0.75]
    assert history.history["alpha"] == [0.75]
    ratio = history.history["compression_ratio"][0]
    # The model's dense bytes over its deployable bytes (biases 16 + 3 in both):
    # hidden 12x16 -> k=6 (rank 200), out 16x3 -> k=2.
    assert ratio == pytest.approx((12 * 16 + 16 * 3 + 19) / (6 * 28 + 2 * 19 + 19))
    assert len(callback.update_seconds) == 1


def test_options_0_and_1_agree(rng):
    x, y = _data(rng)
    results = []
    for option in (0, 1):
        model = mk.compress_model(
            _mlp(), f"compression_option=1,rank=200,update_option={option},{SCHEDULE}"
        )
        _fit(model, x, y, steps=8)
        results.append(model(x).numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("jit_compile", [True, "auto"], ids=["xla", "auto"])
@pytest.mark.parametrize("option", [1, 2, 3, 4])
def test_fit_reaches_alpha_zero(option, jit_compile, rng):
    x, y = _data(rng, n=96)
    spec = (
        f"compression_option={option},rank={8 if option == 4 else 200},"
        "begin_compression_step=0,compression_frequency=2,alpha_decrement_value=0.5"
    )
    model = mk.compress_model(_mlp(), spec)
    _, history = _fit(model, x, y, steps=12, jit_compile=jit_compile)
    assert history.history["alpha"] == [0.0]
    assert np.isfinite(history.history["loss"][0])


def test_conv2d_kernel_compressed_as_a_matrix(rng):
    layer = mk.CompressedConv2D(
        4, 3, padding="same", spec="compression_option=1,rank=400," + mk.ONE_SHOT_SCHEDULE
    )
    x = rng.standard_normal((2, 5, 5, 3)).astype(np.float32)
    layer(x)
    a = layer.kernel.numpy().reshape(27, 4)
    layer.run_alpha_update(0)
    assert float(layer.alpha) == 0.0
    b, c = _svd_factors(a, 1)  # k = ceil(4 · 100 / 400)
    expected = (
        tf.nn.conv2d(x, (b @ c).reshape(3, 3, 3, 4).astype(np.float32), 1, "SAME").numpy()
        + layer.bias.numpy()
    )
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-4, atol=1e-4)


def test_keras_save_load_mid_schedule(tmp_path, rng):
    x, y = _data(rng)
    model = mk.compress_model(_mlp(), f"compression_option=1,rank=200,{SCHEDULE}")
    _fit(model, x, y, steps=7)
    path = os.path.join(tmp_path, "m.keras")
    model.save(path)
    loaded = tf.keras.models.load_model(path)
    for name in ("hidden", "out"):
        a, b = model.get_layer(name).compression, loaded.get_layer(name).compression
        assert a.last_update_step() == b.last_update_step() == 4
        assert float(loaded.get_layer(name).alpha) == 0.75
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), rtol=1e-6, atol=1e-6)
    # The schedule continues from the restored state: the next firing is at step 9.
    for step in (8, 9):
        loaded.get_layer("hidden").run_alpha_update(step)
    assert float(loaded.get_layer("hidden").alpha) == 0.5


def test_bad_input_is_a_value_error_naming_it():
    model = _mlp()
    with pytest.raises(ValueError, match="not_a_layer"):
        mk.compress_model(model, "rank=200", layers=["not_a_layer"])
    with pytest.raises(ValueError, match="only Dense, EinsumDense"):
        mk.compress_model(
            tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.ReLU(name="r")]),
            "rank=200",
            layers=["r"],
        )
    with pytest.raises(ValueError, match="no layer to compress"):
        mk.compress_model(
            tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.ReLU()]), "rank=200"
        )
    with pytest.raises(ValueError, match="no_such_hparam"):
        mk.CompressedDense(4, spec="no_such_hparam=1")
    with pytest.raises(ValueError, match="units"):
        mk.CompressedDense(0)
    with pytest.raises(ValueError, match="update_option"):
        mk.CompressedDense(4, spec="update_option=7")


def test_callback_without_compressed_layers_fails_clearly(rng):
    x, y = _data(rng)
    model = _mlp()
    model.compile(
        optimizer="sgd", loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    with pytest.raises(ValueError, match="no CompressedDense"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[mk.CompressionCallback()])


_TF_KERAS_SCRIPT = r"""
import numpy as np, tensorflow as tf
from tf_matcomp import keras as mk
assert tf.keras.__name__.startswith("tf_keras") or "legacy" in tf.keras.__file__, tf.keras
inputs = tf.keras.Input((6,))
outputs = mk.CompressedDense(3, spec="compression_option=1,rank=200,begin_compression_step=0,"
                                     "compression_frequency=2,alpha_decrement_value=0.5")(inputs)
model = tf.keras.Model(inputs, outputs)
model.compile(optimizer="sgd", loss="mse")
x = np.random.default_rng(0).standard_normal((32, 6)).astype("float32")
history = model.fit(x, x[:, :3], batch_size=4, epochs=1, verbose=0,
                    callbacks=[mk.CompressionCallback()])
assert history.history["alpha"] == [0.0], history.history
print("ok")
"""


def test_tf_keras_where_installed():
    try:
        import tf_keras  # noqa: F401
    except ImportError:
        pytest.skip("tf_keras is not installed")
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1")
    done = subprocess.run(
        [sys.executable, "-c", _TF_KERAS_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-3000:]
