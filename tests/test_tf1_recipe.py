"""The seed README's TF1 recipe hits the schedule exactly, however the session orders its ops.

`train_op = tf.no_op()` under `tf.control_dependencies([apply_gradient_op, all_update_op()])`:
the compression update and the optimizer's global-step increment run in the same
`session.run` with no order between them. graph_compression fires at 10, 20, ..., 200 there
(begin 10, end 200, frequency 10, decrement 0.05: 20 firings, alpha 0). Oracle: the firing
steps are exactly begin + i·frequency for i = 0..19 and alpha ends at exactly 0, in every run.
"""

import numpy as np
import pytest
import tensorflow as tf

from tf_matcomp import compression_op, compression_wrapper

RUNS = 20
TRAINING_RUNS = 260
BEGIN, END, FREQUENCY, DECREMENT = 10, 200, 10, 0.05
EXPECTED_FIRINGS = list(range(BEGIN, END + 1, FREQUENCY))  # the peer's: 10, 20, ..., 200
RANK_FOR_OPTION = {1: 200, 2: 200, 3: 200, 4: 4}
ROWS, COLS, BATCH = 8, 4, 16


def _recipe_graph(option):
    """The README's TF1 graph; returns (graph, train_op, init_op, op, global_step)."""
    rng = np.random.default_rng(option)
    graph = tf.Graph()
    with graph.as_default():
        global_step = tf.compat.v1.train.get_or_create_global_step()
        x = tf.constant(rng.standard_normal((BATCH, ROWS)), tf.float32)
        y = tf.constant(rng.standard_normal((BATCH, COLS)), tf.float32)
        weights = tf.compat.v1.get_variable(
            "weights", initializer=rng.standard_normal((ROWS, COLS)).astype(np.float32)
        )
        hparams = compression_op.CompressionOp.get_default_hparams().parse(
            f"name=recipe,compression_option={option},rank={RANK_FOR_OPTION[option]},"
            f"update_option=0,begin_compression_step={BEGIN},end_compression_step={END},"
            f"compression_frequency={FREQUENCY},alpha_decrement_value={DECREMENT}"
        )
        compression_obj = compression_wrapper.get_apply_compression(hparams, global_step)
        compressed = compression_obj.apply_compression(weights, scope="layer")
        loss = tf.reduce_mean(tf.square(tf.matmul(x, compressed) - y))
        optimizer = tf.compat.v1.train.GradientDescentOptimizer(0.01)
        apply_gradient_op = optimizer.apply_gradients(
            optimizer.compute_gradients(loss), global_step=global_step
        )
        with tf.control_dependencies([apply_gradient_op, compression_obj.all_update_op()]):
            train_op = tf.no_op(name="train")
        init = tf.compat.v1.global_variables_initializer()
    return graph, train_op, init, compression_obj.get_last_compression_op(), global_step


def _firing_steps(option):
    """For each of RUNS trainings: the steps at which the op fired, and the final alpha."""
    graph, train_op, init, op, global_step = _recipe_graph(option)
    results = []
    with tf.compat.v1.Session(graph=graph) as sess:
        for _ in range(RUNS):
            sess.run(init)
            fired, last = [], -1
            for _ in range(TRAINING_RUNS):
                sess.run(train_op)
                now = int(sess.run(op.last_alpha_update_step))
                if now != last:
                    fired.append(now)
                    last = now
            results.append((fired, float(sess.run(op.alpha)), int(sess.run(global_step))))
    return results


@pytest.mark.parametrize("option", [1, 2, 3, 4])
def test_recipe_fires_on_the_grid_and_ends_at_alpha_zero_in_every_run(option):
    results = _firing_steps(option)
    for fired, alpha, steps in results:
        assert steps == TRAINING_RUNS
        assert fired == EXPECTED_FIRINGS
        assert alpha == 0.0
