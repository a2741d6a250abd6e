"""Each bug of graph_compression listed in shared/notes/peer.md, pinned as fixed."""

import numpy as np
import pytest
import tensorflow as tf

from tf_matcomp import compression_op, compression_wrapper
from tf_matcomp.compressors.low_rank import LowRankDecompMatrixCompressor


def _spec(text):
    return compression_op.CompressionOp.get_default_hparams().parse(text)


def _graph_python_run(spec_text, steps):
    """Python updates (update_option 1) with a Session; returns alphas, op counts, last steps."""
    with tf.Graph().as_default() as graph:
        global_step = tf.compat.v1.train.get_or_create_global_step()
        obj = compression_wrapper.get_apply_compression(_spec(spec_text), global_step=global_step)
        obj.apply_compression(tf.compat.v1.get_variable("w", [8, 6]), "layer")
        op = obj.get_last_compression_op()
        alphas, counts, fired = [], [], []
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            for step in steps:
                if obj.run_update_step(session=sess, step_number=step)[0]:
                    fired.append(step)
                alphas.append(float(sess.run(op.alpha)))
                counts.append(len(graph.get_operations()))
    return alphas, counts, fired


def test_python_path_with_end_minus_one_runs_and_respects_frequency():
    # The peer's Python path tested `step < end`, so end=-1 never ran; and it ignored frequency.
    _, _, fired = _graph_python_run(
        "update_option=1,rank=200,compression_frequency=10,alpha_decrement_value=0.1",
        range(0, 100, 3),
    )
    assert fired == [9, 21, 33, 45, 57, 69, 81, 93]


def test_python_path_does_not_grow_the_graph_or_bake_in_constants():
    alphas, counts, _ = _graph_python_run(
        "update_option=1,rank=200,compression_frequency=1,alpha_decrement_value=0.25", range(8)
    )
    assert alphas == [0.75, 0.5, 0.25, 0.0, 0.0, 0.0, 0.0, 0.0]  # frequency 1: fires from 0
    assert len(set(counts)) == 1, counts  # every update ran ops built with the op


def test_python_path_in_eager_respects_end_and_frequency():
    obj = compression_wrapper.get_apply_compression(
        _spec(
            "update_option=1,rank=200,compression_frequency=4,begin_compression_step=2,"
            "end_compression_step=11,alpha_decrement_value=0.1"
        )
    )
    obj.apply_compression(tf.Variable(tf.ones([5, 4])), "eager_python")
    fired = [step for step in range(20) if obj.run_update_step(step_number=step)[0]]
    assert fired == [3, 7, 11]


def test_each_weight_has_its_own_last_update_step():
    # The peer kept one last_alpha_update_step per spec name: layers raced on it.
    obj = compression_wrapper.get_apply_compression(_spec("rank=200,compression_frequency=2"))
    a, b = tf.Variable(tf.ones([4, 4])), tf.Variable(tf.ones([4, 4]))
    obj.apply_compression(a, "a")
    obj.update(1)
    obj.apply_compression(b, "b")
    obj.update(2)
    first, second = obj.get_compression_ops()
    assert int(first.last_alpha_update_step.numpy()) == 1
    assert int(second.last_alpha_update_step.numpy()) == 2


class _CountingCompressor(LowRankDecompMatrixCompressor):
    def __init__(self, spec):
        super().__init__(spec)
        self.calls = 0

    def static_matrix_compressor(self, a_matrix):
        self.calls += 1
        return super().static_matrix_compressor(a_matrix)

    def tpu_matrix_compressor(self, a_matrix):
        self.calls += 1
        return super().tpu_matrix_compressor(a_matrix)


@pytest.mark.parametrize("graph", [False, True])
def test_no_compression_runs_at_build_time(graph):
    # The peer compressed an all-zeros matrix at build time just to learn the factor shapes.
    spec = _spec("rank=200,update_option=2")
    compressor = _CountingCompressor(compression_wrapper.make_compressor(spec).get_spec())
    context = tf.Graph().as_default() if graph else tf.init_scope()
    with context:
        global_step = tf.compat.v1.train.get_or_create_global_step() if graph else None
        obj = compression_op.ApplyCompression("s", spec, compressor, global_step=global_step)
        obj.apply_compression(tf.Variable(tf.ones([6, 4])), "built")
        if graph:  # building the update ops traces the TF path into the graph once, never runs it
            assert compressor.calls <= 2
        else:
            assert compressor.calls == 0
        op = obj.get_last_compression_op()
        assert op.b_matrix_tfvar.shape == (6, 2) and op.c_matrix_tfvar.shape == (2, 4)
        assert obj.compressed_size == 20 and obj.uncompressed_size == 24  # known at build


@pytest.mark.parametrize("option", [1, 2, 3, 4])
def test_spec_is_not_mutated_and_global_rng_untouched(option):
    spec = _spec(
        f"compression_option={option},rank={16 if option == 4 else 200},compression_frequency=1"
    )
    before = spec.values()
    rng_state = np.random.get_state()[1].copy()
    obj = compression_wrapper.get_apply_compression(spec)
    obj.apply_compression(
        tf.Variable(np.random.default_rng(0).standard_normal((8, 8)).astype(np.float32)), "mutate"
    )
    obj.run_update_step(step_number=0)
    obj.get_compression_ops()[0].update(5)
    assert spec.values() == before
    np.testing.assert_array_equal(np.random.get_state()[1], rng_state)
    assert obj.compressed_size > 0 and obj.uncompressed_size == 64


@pytest.mark.parametrize("update_option", [0, 1, 2, 3])
def test_all_update_op_works_for_every_update_option(update_option):
    # The peer's all_update_op() raised unless update_option was 0.
    with tf.Graph().as_default():
        global_step = tf.compat.v1.train.get_or_create_global_step()
        obj = compression_wrapper.get_apply_compression(
            _spec(f"update_option={update_option},rank=200,compression_frequency=1"),
            global_step=global_step,
        )
        obj.apply_compression(tf.compat.v1.get_variable("w", [4, 4]), "every_option")
        with tf.control_dependencies([obj.all_update_op()]):
            train = tf.compat.v1.assign_add(global_step, 1)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            for _ in range(3):
                sess.run(train)
            alpha = sess.run(obj.get_last_compression_op().alpha)
    assert alpha == pytest.approx(0.97 if update_option in (0, 2) else 1.0)  # steps 0, 1, 2


def test_unknown_compression_option_is_an_error_not_low_rank():
    with pytest.raises(ValueError, match="compression_option"):
        compression_wrapper.get_apply_compression(_spec("compression_option=5"))


def test_summaries_work_eagerly():
    obj = compression_wrapper.get_apply_compression(_spec("rank=200"))
    obj.apply_compression(tf.Variable(tf.ones([4, 4])), "eager_summaries")
    with tf.summary.create_noop_writer().as_default():
        obj.add_compression_summaries(step=0)  # no graph-mode-only names (tensor.op.name)
