"""All compression state lives in variables: a mid-schedule restore continues identically."""

import numpy as np
import pytest
import tensorflow as tf

from tf_matcomp import compression_op, compression_wrapper

SPEC = "begin_compression_step=5,compression_frequency=5,alpha_decrement_value=0.2,rank=200"


# What makes an option compress a 12x8 weight besides SPEC.
OPTION_HPARAMS = {
    4: "rank=8",  # k-means: 8 centroids
    9: "input_block_size=4,input_compression_factor=2,compress_output=True,"
    "output_block_size=4,output_compression_factor=2",
}


def _spec(option):
    spec = compression_op.CompressionOp.get_default_hparams().parse(
        f"{SPEC},compression_option={option}"
    )
    return spec.parse(OPTION_HPARAMS.get(option))


def _nudges(steps):
    rng = np.random.default_rng(7)
    return {step: rng.standard_normal((12, 8)).astype(np.float32) for step in steps}


def _state(obj):
    op = obj.get_last_compression_op()
    return (
        float(op.alpha.numpy()),
        int(op.last_alpha_update_step.numpy()),
        int(op.alpha_update_count.numpy()),
        [v.numpy().copy() for v in op.factor_variables],
    )


def _build(option):
    weights = tf.Variable(np.random.default_rng(1).standard_normal((12, 8)).astype(np.float32))
    obj = compression_wrapper.get_apply_compression(_spec(option))
    obj.apply_compression(weights, "restored")
    return weights, obj


def _run(weights, obj, steps, nudges):
    history = []
    for step in steps:
        obj.update(step)
        weights.assign_add(0.1 * nudges[step])
        history.append(_state(obj))
    return history


def _assert_same(history, other):
    assert len(history) == len(other)
    for (alpha, last, count, factors), (alpha2, last2, count2, factors2) in zip(history, other):
        assert (alpha, last, count) == (alpha2, last2, count2)
        for f, f2 in zip(factors, factors2):
            np.testing.assert_array_equal(f, f2)


@pytest.mark.parametrize("option", [1, 2, 3, 4, 9])
@pytest.mark.parametrize("save_at", [3, 7])  # before and after the first firing (step 5)
def test_tf2_checkpoint_restore_mid_schedule_continues_identically(tmp_path, option, save_at):
    nudges = _nudges(range(20))
    weights, obj = _build(option)
    _run(weights, obj, range(save_at), nudges)
    path = tf.train.Checkpoint(weights=weights, compression=obj).save(str(tmp_path / "ckpt"))
    expected = _run(weights, obj, range(save_at, 20), nudges)

    fresh_weights, fresh_obj = _build(option)
    fresh_obj.get_last_compression_op().update(6)  # diverge first: the restore must undo it
    tf.train.Checkpoint(weights=fresh_weights, compression=fresh_obj).restore(
        path
    ).assert_consumed()
    _assert_same(_run(fresh_weights, fresh_obj, range(save_at, 20), nudges), expected)
    assert expected[-1][0] == pytest.approx(0.4)  # fired at 5, 10, 15


def _tf1_session_run(save_path=None, restore_path=None, steps=range(10)):
    with tf.Graph().as_default():
        global_step = tf.compat.v1.train.get_or_create_global_step()
        weights = tf.compat.v1.get_variable(
            "w", initializer=np.random.default_rng(1).standard_normal((12, 8)).astype(np.float32)
        )
        obj = compression_wrapper.get_apply_compression(_spec(1), global_step=global_step)
        weight = obj.apply_compression(weights, "saved")
        loss = tf.reduce_sum(tf.square(weight - 1.0))
        # The update runs in its own session.run: under tf.control_dependencies the forward
        # pass may read alpha and the factors before or after the update (a race of the
        # README's pattern), which would make the two runs differ for reasons of scheduling.
        update = obj.all_update_op()
        train = tf.compat.v1.train.GradientDescentOptimizer(0.01).minimize(
            loss, global_step=global_step
        )
        op = obj.get_last_compression_op()
        saver = tf.compat.v1.train.Saver()
        history = []
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            if restore_path:
                saver.restore(sess, restore_path)
            for _ in steps:
                sess.run(update)
                sess.run(train)
                history.append(
                    sess.run(
                        [
                            op.alpha,
                            op.last_alpha_update_step,
                            global_step,
                            op.b_matrix_tfvar,
                            weights,
                        ]
                    )
                )
            path = saver.save(sess, save_path) if save_path else None
    return history, path


def test_tf1_saver_restore_mid_schedule_continues_identically(tmp_path):
    full, _ = _tf1_session_run(steps=range(20))
    _, path = _tf1_session_run(save_path=str(tmp_path / "model.ckpt"), steps=range(7))
    resumed, _ = _tf1_session_run(restore_path=path, steps=range(13))
    for got, want in zip(resumed, full[7:]):
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)
    assert [h[1] for h in full] == [-1] * 5 + [5] * 5 + [10] * 5 + [15] * 5
