"""What every compression method must do end to end, shared by the per-method test files.

Each helper runs one path for a spec and asserts what holds for any method, given the method's
own oracle (a function of the factors giving the dense Â) from its test file: the TF-op update inside tf.function / under XLA, a TF1 graph
with an update option, Keras compress → strip → `.keras` / SavedModel / TFLite, and training
the factors with the callback.
"""

import warnings

import numpy as np
import pytest
import tensorflow as tf

import tf_matcomp.keras as mk
from tf_matcomp import compression_op, compression_wrapper

ONE_SHOT = mk.ONE_SHOT_SCHEDULE


def parse(text: str):
    """An op spec: `text` on the defaults."""
    return compression_op.CompressionOp.get_default_hparams().parse(text)


def eager_op(text: str, update_option: int, a: np.ndarray):
    """The CompressionOp of a variable holding `a`, built eagerly, firing once at step 0."""
    spec = parse(f"{text},update_option={update_option},{ONE_SHOT}")
    apply = compression_wrapper.get_apply_compression(spec)
    apply.apply_compression(tf.Variable(a), scope="w")
    return apply.get_last_compression_op()


def check_tf_op_update_in_function(text: str, a: np.ndarray, oracle, compressor, rng, jit):
    """The TF-op update at step 0 and `get_apply_matmul` in one tf.function (under XLA with
    `jit`) on a weight holding `a`: alpha reaches 0, the factors rebuild (by `oracle`, factors
    → dense Â) what `compressor`'s NumPy path fits, and the product is x·Âᵀ."""
    op = eager_op(text, 0, a)

    @tf.function(jit_compile=jit)
    def step(v):
        op.update(tf.constant(0, tf.int64))
        return op.get_apply_matmul(v)

    x = rng.standard_normal((3, a.shape[1])).astype(np.float32)
    assert step(tf.constant(x)).shape == (3, a.shape[0])
    assert float(op.alpha) == 0.0
    w_hat = oracle([np.asarray(f) for f in op.factor_variables])
    reference = oracle(compressor.static_matrix_compressor(a))
    np.testing.assert_allclose(w_hat, reference, rtol=1e-4, atol=1e-4)
    out = step(tf.constant(x)).numpy()  # the weight now read after the update
    np.testing.assert_allclose(out, x @ w_hat.T, rtol=1e-4, atol=1e-4)


def check_tf1_graph(text: str, update_option: int, a: np.ndarray, oracle, compressor, rng):
    """In a TF1 graph and session, the TF update op (and the Python update for options 1 and
    2) at step 0 on a weight holding `a`: with option 3 the weight stays A, else alpha is 0 and
    the weight, and x · weight, are Â as `oracle` (factors → dense) rebuilds it from the
    factors and from `compressor`'s NumPy fit."""
    x = rng.standard_normal((2, a.shape[0])).astype(np.float32)
    with tf.Graph().as_default():
        step = tf.compat.v1.train.get_or_create_global_step()
        spec = parse(f"{text},update_option={update_option},{ONE_SHOT}")
        apply = compression_wrapper.get_apply_compression(spec, global_step=step)
        weight = apply.apply_compression(tf.compat.v1.get_variable("w", initializer=a), "layer")
        update = apply.all_update_op()
        product = tf.matmul(x, weight)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run(update)
            if update_option in (1, 2):
                apply.run_update_step(sess, step_number=0)
            op = apply.get_last_compression_op()
            alpha, w, factors, y = sess.run([op.alpha, weight, op.factor_variables, product])
    if update_option == 3:
        assert alpha == 1.0
        np.testing.assert_array_equal(w, a)
        return
    assert alpha == 0.0
    np.testing.assert_allclose(w, oracle(factors), rtol=1e-5, atol=1e-5)
    reference = oracle(compressor.static_matrix_compressor(a))
    np.testing.assert_allclose(w, reference, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(y, x @ w, rtol=1e-4, atol=1e-4)


def mlp(rng) -> tf.keras.Model:
    """24 → Dense 16 relu ("hidden") → Dense 8 ("out"), random weights."""
    inputs = tf.keras.Input((24,))
    hidden = tf.keras.layers.Dense(16, activation="relu", name="hidden")(inputs)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(8, name="out")(hidden))
    for w in model.weights:
        w.assign(rng.standard_normal(w.shape).astype(np.float32) * 0.5)
    return model


def compress_and_strip(model, spec: str, **kwargs):
    """(compressed, stripped): `model` compressed by `spec` (no layer may grow), every
    compressed layer fired once (alpha 0), then stripped."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", mk.LayerGrowthWarning)
        compressed = mk.compress_model(model, f"{spec},{ONE_SHOT}", **kwargs)
    for layer in mk.compressed_layers(compressed):
        layer.run_alpha_update(0)
    return compressed, mk.strip_compression(compressed)


def check_deployed(model, compressed, stripped, x: np.ndarray, tmp_path) -> None:
    """The stripped model computes what the compressed one does, is smaller than `model` by
    its compression_ratio, and so do its `.keras` reload and its SavedModel."""
    expected = compressed(x).numpy()
    assert not mk.compressed_layers(stripped)
    np.testing.assert_allclose(stripped(x).numpy(), expected, rtol=1e-5, atol=1e-5)
    dense_bytes = mk.model_size(model).bytes
    assert mk.model_size(stripped).bytes < dense_bytes
    assert mk.compression_ratio(stripped) == pytest.approx(
        dense_bytes / mk.model_size(stripped).bytes
    )
    assert mk.compression_ratio(compressed) == pytest.approx(mk.compression_ratio(stripped))
    path = str(tmp_path / "m.keras")
    stripped.save(path)
    loaded = tf.keras.models.load_model(path)
    np.testing.assert_allclose(loaded(x).numpy(), expected, rtol=1e-5, atol=1e-5)
    stripped.export(str(tmp_path / "saved"))
    served = tf.saved_model.load(str(tmp_path / "saved"))
    np.testing.assert_allclose(served.serve(x).numpy(), expected, rtol=1e-5, atol=1e-5)


def check_tflite_builtins(stripped, x: np.ndarray) -> None:
    """`stripped` converts to TFLite with builtin ops only and computes what it computes."""
    converter = tf.lite.TFLiteConverter.from_keras_model(stripped)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    interpreter = tf.lite.Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(out, stripped(x).numpy(), rtol=1e-5, atol=1e-5)


def exported_tflite(model, path: str) -> bytes:
    """`model` exported as a SavedModel at `path` (batch left unknown, so the converter cannot
    fold the run-time zero of the stripped layers) and converted with builtin ops only."""
    model.export(path, verbose=False)
    return tf.lite.TFLiteConverter.from_saved_model(path).convert()


def run_tflite(flatbuffer: bytes, x: np.ndarray):
    """(output for `x`, the names of the ops the interpreter runs)."""
    interpreter = tf.lite.Interpreter(model_content=flatbuffer)
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, x)
    interpreter.invoke()
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]), ops


def check_fit_trains_the_factors(model, spec: str, compressor, rng) -> None:
    """`model`'s "hidden" layer compressed by `spec` on a schedule reaching alpha 0 within two
    epochs of `fit` with the callback: alpha ends at 0, every factor is a trainable variable,
    and training moved them away from the fit `compressor` makes of the final A."""
    schedule = "begin_compression_step=0,compression_frequency=2,alpha_decrement_value=0.5"
    compressed = mk.compress_model(model, f"{spec},{schedule}", layers=["hidden"])
    compressed.compile("adam", "mse")
    x = rng.standard_normal((64, 24)).astype(np.float32)
    y = rng.standard_normal((64, 8)).astype(np.float32)
    (layer,) = mk.compressed_layers(compressed)
    compressed.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[mk.CompressionCallback()])
    assert float(layer.alpha) == 0.0
    op = layer.compression.op
    fitted = compressor.static_matrix_compressor(np.asarray(op.a_matrix_tfvar))
    trained = [np.asarray(v) for v in op.factor_variables]
    assert any(not np.allclose(t, f) for t, f in zip(trained, fitted))
    trainable = {id(v) for v in compressed.trainable_variables}
    assert all(id(v) in trainable for v in op.factor_variables)
