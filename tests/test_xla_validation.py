"""Non-finite values in compression updates, eagerly, in tf.function and under jit_compile.

XLA cannot raise at run time, so the kernels' checks vanish under jit_compile. What holds in
every mode instead (`tf_matcomp.compression_op.updates`): a firing whose factors (or, at the
first firing, whose weight) are not finite is skipped — skipped_update_count + 1, nothing else
changes, the update is tried again at the next step — and eagerly, from Python and from the
Keras callback a SkippedUpdateWarning names the weight and why. Also pinned: what
kmeans_dequantize does with out-of-range codes in each mode (documented in the README).
"""

import warnings

import numpy as np
import pytest
import tensorflow as tf

from tf_matcomp import compression_op, compression_wrapper, ops
from tf_matcomp import keras as mk
from tf_matcomp.compression_op import SkippedUpdateWarning

OPTIONS = [1, 2, 3, 4, 9]
SCHEDULE = "begin_compression_step=0,compression_frequency=2,alpha_decrement_value=0.25"
# What makes each option compress a 12x8 weight (rank: a factor x100, or 8 k-means centroids).
OPTION_HPARAMS = {
    4: "rank=8",
    9: "input_block_size=4,input_compression_factor=2,compress_output=True,"
    "output_block_size=4,output_compression_factor=2",
}


def _spec(option, update_option=0, use_tpu=False):
    return compression_op.CompressionOp.get_default_hparams().parse(
        f"compression_option={option},{OPTION_HPARAMS.get(option, 'rank=200')},"
        f"update_option={update_option},use_tpu={use_tpu},{SCHEDULE}"
    )


def _weight(bad=None, dtype=np.float32):
    a = np.random.default_rng(0).standard_normal((12, 8)).astype(dtype)
    if bad is not None:
        a[3, 2] = bad
    return a


def _op(option, a, update_option=0, scope="guarded", use_tpu=False):
    obj = compression_wrapper.get_apply_compression(_spec(option, update_option, use_tpu))
    variable = tf.Variable(a)
    obj.apply_compression(variable, scope)
    return variable, obj.get_last_compression_op()


def _updater(op, mode):
    if mode == "eager":
        return op.update
    return tf.function(op.update, jit_compile=mode == "jit")


def _state(op):
    return (
        float(op.alpha.numpy()),
        int(op.last_alpha_update_step.numpy()),
        int(op.alpha_update_count.numpy()),
        int(op.skipped_update_count.numpy()),
    )


def _factors(op):
    return [v.numpy().copy() for v in op.factor_variables]


def _finite(arrays):
    return all(np.isfinite(a).all() for a in arrays if np.issubdtype(a.dtype, np.floating))


@pytest.mark.parametrize("bad", [np.nan, np.inf], ids=["nan", "inf"])
@pytest.mark.parametrize("option", OPTIONS)
def test_tf_update_skips_a_non_finite_weight_then_fires_once_it_is_finite(option, bad, mode):
    variable, op = _op(option, _weight(bad))
    update = _updater(op, mode)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert not bool(update(tf.constant(1, tf.int64)))
    # Skipped: alpha does not step toward the never-computed (zero) Â; the factors stay zero.
    assert _state(op) == (1.0, -1, 0, 1)
    assert all(not f.any() for f in _factors(op))
    skipped = [w for w in caught if issubclass(w.category, SkippedUpdateWarning)]
    if mode == "eager":  # a tf.function cannot warn (the Keras callback does, see below)
        assert len(skipped) == 1
        assert "'guarded'" in str(skipped[0].message)
        assert "1 non-finite values" in str(skipped[0].message)
    else:
        assert not skipped
    # The schedule calls for it again at the next step; with a finite weight it fires.
    variable.assign(_weight())
    assert bool(update(tf.constant(2, tf.int64)))
    assert _state(op) == (0.75, 2, 1, 1)
    assert _finite(_factors(op)) and any(f.any() for f in _factors(op))


@pytest.mark.parametrize("option", [1, 4])
def test_a_later_firing_with_non_finite_factors_is_skipped(option, mode):
    _, op = _op(option, _weight())
    update = _updater(op, mode)
    assert bool(update(tf.constant(1, tf.int64)))
    op.b_matrix_tfvar.assign(tf.fill(op.b_matrix_tfvar.shape, np.nan))  # e.g. by training
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert not bool(update(tf.constant(3, tf.int64)))
    assert _state(op) == (0.75, 1, 1, 1)  # alpha does not step toward a NaN Â
    if mode == "eager":
        assert "its factors are not finite" in str(caught[-1].message)


def test_overflowing_factors_are_skipped_under_xla_and_raise_eagerly():
    """Simhash of finite 3e38 values: its scales overflow. The native kernel (eager,
    tf.function) raises InvalidArgumentError; under XLA the update is skipped."""
    a = _weight()
    a[:, 0] = 3e38
    _, op = _op(2, a)
    with pytest.raises(tf.errors.InvalidArgumentError, match="finite"):
        op.update(tf.constant(1, tf.int64))
    assert not bool(_updater(op, "jit")(tf.constant(1, tf.int64)))
    assert _state(op) == (1.0, -1, 0, 1)


@pytest.mark.parametrize("use_tpu", [False, True], ids=["numpy", "tf_path"])
@pytest.mark.parametrize("option", OPTIONS)
def test_python_update_skips_and_warns_naming_the_weight(option, use_tpu):
    variable, op = _op(option, _weight(np.nan), 1, "python_guarded", use_tpu)
    with pytest.warns(SkippedUpdateWarning, match="'python_guarded'.*step 1 was skipped"):
        assert not op.run_update_step(step_number=1)
    assert _state(op) == (1.0, -1, 0, 1)
    variable.assign(_weight())
    assert op.run_update_step(step_number=2)
    assert _state(op) == (0.75, 2, 1, 1) and _finite(_factors(op))


@pytest.mark.parametrize("use_tpu", [False, True], ids=["numpy", "tf_path"])
def test_tf1_graph_updates_skip_and_the_python_update_warns(use_tpu):
    with tf.Graph().as_default():
        global_step = tf.compat.v1.train.get_or_create_global_step()
        spec = _spec(1, 2, use_tpu)
        obj = compression_wrapper.get_apply_compression(spec, global_step=global_step)
        weights = tf.compat.v1.get_variable("w", initializer=_weight(np.nan))
        obj.apply_compression(weights, "graph_guarded")
        op = obj.get_last_compression_op()
        update = obj.all_update_op()
        increment = tf.compat.v1.assign_add(global_step, 1)
        make_finite = weights.assign(_weight())
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run(increment)
            sess.run(update)  # the TF-op update (option 2 runs both)
            with pytest.warns(SkippedUpdateWarning, match="'graph_guarded'"):
                assert not obj.run_update_step(session=sess, step_number=1)[0]
            skipped = sess.run([op.alpha, op.alpha_update_count, op.skipped_update_count])
            sess.run(make_finite)
            assert obj.run_update_step(session=sess, step_number=2)[0]
            fired = sess.run([op.alpha, op.alpha_update_count, op.skipped_update_count])
            factors = sess.run(op.factor_variables)
    assert [float(skipped[0]), int(skipped[1]), int(skipped[2])] == [1.0, 0, 2]
    assert [float(fired[0]), int(fired[1]), int(fired[2])] == [0.75, 1, 2]
    assert _finite(factors) and any(f.any() for f in factors)


@pytest.mark.parametrize("update_option", [0, 1])
def test_keras_callback_warns_naming_the_layer(update_option):
    inputs = tf.keras.Input((8,))
    spec = f"compression_option=1,rank=200,update_option={update_option},{SCHEDULE}"
    layer = mk.CompressedDense(4, spec=spec, name="nan_dense")
    model = tf.keras.Model(inputs, layer(inputs))
    model.compile(optimizer="sgd", loss="mse", jit_compile=True)
    layer.kernel.assign(_weight(np.nan).T[:8, :4])
    x = np.ones((12, 8), np.float32)
    with pytest.warns(SkippedUpdateWarning, match="'nan_dense'.*non-finite"):
        model.fit(
            x,
            x[:, :4],
            batch_size=4,
            epochs=1,
            verbose=0,
            callbacks=[mk.CompressionCallback()],
        )
    op = layer.compression.op
    assert float(layer.alpha) == 1.0
    # Steps 1 and 2 (step 0 is before the first firing is due): tried and skipped.
    assert int(op.skipped_update_count.numpy()) == 2
    assert any(w.path == "nan_dense/skipped_update_count" for w in layer.weights)


def test_kmeans_dequantize_out_of_range_codes(mode):
    """Out-of-range codes: InvalidArgumentError eagerly and in tf.function (CPU); under XLA
    the gather clamps them into [0, K - 1] (the README documents it). kmeans_quantize never
    produces them; only assigned or foreign codes can be out of range."""
    codebook = tf.constant([[0.0], [1.0], [2.0]])
    codes = tf.constant([[1, 5, -1]], tf.int32)
    dequantize = ops.kmeans_dequantize
    if mode == "jit":
        result = tf.function(dequantize, jit_compile=True)(codebook, codes)
        np.testing.assert_array_equal(result.numpy(), [[1.0, 2.0, 0.0]])
        return
    with pytest.raises(tf.errors.InvalidArgumentError, match="not in"):
        (dequantize if mode == "eager" else tf.function(dequantize))(codebook, codes)
