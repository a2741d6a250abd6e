"""CompressionOp / ApplyCompression in TF1 graphs, eager, tf.function and XLA; every option."""

import glob
import os

import numpy as np
import pytest
import tensorflow as tf

import tf_matcomp
from tf_matcomp import compression_op, compression_wrapper
from tf_matcomp.compressors import low_rank

OPTIONS = [1, 2, 3, 4]
RANK_FOR_OPTION = {0: 200, 1: 200, 2: 200, 3: 200, 4: 16}
SCHEDULE = "begin_compression_step=5,compression_frequency=5,alpha_decrement_value=0.25"
IN, OUT, BATCH, STEPS = 16, 8, 64, 40


def _spec(option, update_option, extra=""):
    text = (
        f"name=test,compression_option={option},rank={RANK_FOR_OPTION[option]},"
        f"update_option={update_option},{SCHEDULE}"
    )
    return compression_op.CompressionOp.get_default_hparams().parse(
        text + ("," + extra if extra else "")
    )


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((BATCH, IN)).astype(np.float32)
    target = (rng.standard_normal((IN, 2)) @ rng.standard_normal((2, OUT))).astype(np.float32)
    w0 = (0.5 * rng.standard_normal((IN, OUT))).astype(np.float32)
    return x, x @ target, w0


def _assert_loss_fell(losses):
    assert np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < 0.9 * losses[0], losses


def _expected_alphas(steps, begin=5, frequency=5, decrement=0.25):
    alphas, last, count = [], -1, 0
    for step in range(steps):
        if step >= begin and last + frequency <= step:
            last, count = step, count + 1
        alphas.append(max(1 - count * decrement, 0.0))
    return alphas


# --- the seed README's TF1 example ----------------------------------------------------------
def _train_tf1(option, update_option, extra=""):
    x_value, y_value, w0 = _problem()
    with tf.Graph().as_default():
        global_step = tf.compat.v1.train.get_or_create_global_step()
        x = tf.compat.v1.placeholder(tf.float32, [BATCH, IN])
        y = tf.compat.v1.placeholder(tf.float32, [BATCH, OUT])
        with tf.compat.v1.variable_scope("softmax_linear") as scope:
            weights = tf.compat.v1.get_variable("weights", initializer=w0)
            # --- the README's lines, imports changed only ---
            compression_hparams = _spec(option, update_option, extra)  # get_default...parse
            compression_obj = compression_wrapper.get_apply_compression(
                compression_hparams, global_step=global_step
            )
            weight_after_compression = compression_obj.apply_compression(weights, scope)
        loss = tf.reduce_mean(tf.square(tf.matmul(x, weight_after_compression) - y))
        update_op = compression_obj.all_update_op()
        with tf.control_dependencies([update_op]):
            train_op = tf.compat.v1.train.GradientDescentOptimizer(0.05).minimize(
                loss, global_step=global_step
            )
        op = compression_obj.get_last_compression_op()
        compressed = op.get_compressed_weight()
        losses, alphas = [], []
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            for step in range(STEPS):
                if update_option in (1, 2):
                    compression_obj.run_update_step(session=sess, step_number=step)
                loss_value, _ = sess.run([loss, train_op], {x: x_value, y: y_value})
                losses.append(loss_value)
                alphas.append(sess.run(op.alpha))
            final, reconstruction = sess.run([weight_after_compression, compressed])
    return np.array(losses), alphas, final, reconstruction


@pytest.mark.parametrize(
    "option, update_option",
    [(option, update_option) for option in OPTIONS for update_option in (0, 1)],
)
def test_tf1_graph_session_trains_each_option(option, update_option):
    losses, alphas, final, reconstruction = _train_tf1(option, update_option)
    np.testing.assert_allclose(alphas, _expected_alphas(STEPS), atol=1e-7)
    _assert_loss_fell(losses)
    np.testing.assert_allclose(final, reconstruction, rtol=1e-5, atol=1e-6)  # alpha is 0


def test_tf1_graph_update_option_2_fires_once_per_step():
    _, alphas, _, _ = _train_tf1(1, 2)
    np.testing.assert_allclose(alphas, _expected_alphas(STEPS), atol=1e-7)


def test_tf1_readme_hparams_string_parses_and_runs():
    hparams = (
        "name=cifar10_compression,begin_compression_step=1000,end_compression_step=2000,"
        "compression_frequency=10,compression_option=1,use_tpu=False,update_option=0,"
        "rank=4"
    )  # graph_compression's README example, verbatim
    with tf.Graph().as_default():
        global_step = tf.compat.v1.train.get_or_create_global_step()
        weights = tf.compat.v1.get_variable("w", [8, 6])
        spec = compression_op.CompressionOp.get_default_hparams().parse(hparams)
        obj = compression_wrapper.get_apply_compression(spec, global_step=global_step)
        weight = obj.apply_compression(weights, "softmax_linear")
        with tf.control_dependencies([obj.all_update_op()]):
            step = tf.compat.v1.assign_add(global_step, 1)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run(step)
            assert sess.run(weight).shape == (8, 6)
            assert sess.run(obj.get_last_compression_op().alpha) == 1.0


# --- TF2: eager, tf.function, XLA -----------------------------------------------------------
def _trainable(weights, obj):
    variables = {weights.ref(): weights}
    for op in obj.get_compression_ops():
        for v in op.trainable_variables:
            variables[v.ref()] = v
    return list(variables.values())


def _train_tf2(option, mode, update_option, extra=""):
    x, y, w0 = _problem()
    weights = tf.Variable(w0, name="weights")
    global_step = tf.Variable(0, dtype=tf.int64, name="global_step")
    obj = compression_wrapper.get_apply_compression(
        _spec(option, update_option, extra), global_step=global_step
    )

    def step_fn():
        with tf.GradientTape() as tape:
            weight = obj.apply_compression(weights, "layer")
            loss = tf.reduce_mean(tf.square(tf.matmul(x, weight) - y))
        update = obj.all_update_op()
        with tf.control_dependencies([update] if update is not None else []):
            variables = _trainable(weights, obj)
            grads = tape.gradient(loss, variables)
            for variable, grad in zip(variables, grads):
                if grad is not None:
                    variable.assign_sub(0.05 * tf.convert_to_tensor(grad))
            global_step.assign_add(1)
        return loss

    if mode == "eager":
        run = step_fn
    else:
        obj.apply_compression(weights, "layer")  # state first, outside the traced function
        run = tf.function(step_fn, jit_compile=(mode == "jit"))
    losses, alphas = [], []
    for step in range(STEPS):
        if update_option in (1, 2):
            obj.run_update_step(step_number=step)
        losses.append(float(run()))
        alphas.append(float(obj.get_last_compression_op().alpha.numpy()))
    op = obj.get_last_compression_op()
    return np.array(losses), alphas, op.get_weight().numpy(), op.get_compressed_weight().numpy()


@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize(
    "mode, update_option, extra",
    [("eager", 0, ""), ("eager", 1, ""), ("function", 0, ""), ("jit", 0, "use_tpu=True")],
)
def test_tf2_trains_each_option_in_each_update_mode(option, mode, update_option, extra):
    losses, alphas, final, reconstruction = _train_tf2(option, mode, update_option, extra)
    np.testing.assert_allclose(alphas, _expected_alphas(STEPS), atol=1e-7)
    _assert_loss_fell(losses)
    np.testing.assert_allclose(final, reconstruction, rtol=1e-5, atol=1e-6)


def test_variables_may_be_created_inside_the_first_trace():
    x, y, w0 = _problem()
    weights = tf.Variable(w0)
    obj = compression_wrapper.get_apply_compression(_spec(1, 0))

    @tf.function
    def step(s):
        weight = obj.apply_compression(weights, "inner")
        fired = obj.update(s)
        return tf.reduce_mean(tf.square(tf.matmul(x, weight) - y)), fired

    for s in range(12):
        step(tf.constant(s, tf.int64))
    assert len(obj.get_compression_ops()) == 1
    assert float(obj.get_last_compression_op().alpha.numpy()) == 0.5  # fired at 5 and 10


def test_factors_come_from_the_weight_at_the_first_firing():
    rng = np.random.default_rng(3)
    weights = tf.Variable(rng.standard_normal((12, 10)).astype(np.float32))
    obj = compression_wrapper.get_apply_compression(_spec(1, 0))
    obj.apply_compression(weights, "first")
    op = obj.get_last_compression_op()
    assert not np.any(op.b_matrix_tfvar.numpy())  # nothing computed at build time
    for step in range(5):
        obj.update(step)
        weights.assign_add(rng.standard_normal((12, 10)).astype(np.float32))
    at_firing = weights.numpy()
    obj.update(5)
    k = op.b_matrix_tfvar.shape[1]
    u, s, vt = np.linalg.svd(at_firing)
    np.testing.assert_allclose(
        op.b_matrix_tfvar.numpy() @ op.c_matrix_tfvar.numpy(),
        (u[:, :k] * s[:k]) @ vt[:k],
        atol=1e-4,
    )
    weights.assign(tf.zeros_like(weights))
    obj.update(10)  # later firings only step alpha
    np.testing.assert_allclose(
        op.b_matrix_tfvar.numpy() @ op.c_matrix_tfvar.numpy(),
        (u[:, :k] * s[:k]) @ vt[:k],
        atol=1e-4,
    )


@pytest.mark.parametrize("path", ["tf", "python"])
def test_two_layers_under_one_spec_keep_independent_schedules(path):
    spec = compression_op.CompressionOp.get_default_hparams().parse(
        "rank=200,compression_frequency=3,alpha_decrement_value=0.1,update_option=2"
    )
    obj = compression_wrapper.get_apply_compression(spec)
    first = tf.Variable(tf.ones([6, 4]))
    second = tf.Variable(tf.ones([5, 3]))
    obj.apply_compression(first, "first")
    history = []
    for step in range(12):
        if step == 4:
            obj.apply_compression(second, "second")
        if path == "tf":
            obj.update(step)
        else:
            obj.run_update_step(step_number=step)
        history.append([int(op.last_alpha_update_step.numpy()) for op in obj.get_compression_ops()])
    ops = obj.get_compression_ops()
    assert ops[0].last_alpha_update_step is not ops[1].last_alpha_update_step
    assert [h[0] for h in history] == [-1, -1, 2, 2, 2, 5, 5, 5, 8, 8, 8, 11]
    assert [h[1] for h in history[4:]] == [4, 4, 4, 7, 7, 7, 10, 10]
    assert [round(float(op.alpha.numpy()), 6) for op in ops] == [0.6, 0.7]


# --- sizes, matmul forms, summaries -------------------------------------------------------
@pytest.mark.parametrize(
    "option, sizes",
    [
        (1, lambda m, n: ((m + n) * 8 * 32, (m + n) * 8)),  # k = ceil(32·100/400)
        (2, lambda m, n: (9 * ((n + 7) // 8) * 8 + n * 32, None)),  # k = 32·100//400 + 1
        (4, lambda m, n: (16 * 32 + m * n * 8, None)),  # 16 centroids, uint8 codes
        (3, lambda m, n: (m * 2 * 32 * 2 + 8 * n * 32, None)),  # k=8 atoms, s=2 per row
    ],
)
def test_sizes_per_op_and_summed(option, sizes):
    rank = 16 if option == 4 else 400
    spec = compression_op.CompressionOp.get_default_hparams().parse(
        f"compression_option={option},rank={rank}"
    )
    obj = compression_wrapper.get_apply_compression(spec)
    shapes = [(32, 40), (48, 32)]
    for i, shape in enumerate(shapes):
        obj.apply_compression(tf.Variable(tf.zeros(shape)), f"w{i}")
    expected_bits = []
    for op, (m, n) in zip(obj.get_compression_ops(), shapes):
        bits, size = sizes(m, n)
        assert op.uncompressed_size == m * n and op.uncompressed_bits == m * n * 32
        assert op.compressed_bits == bits
        assert op.compressed_size == (size if size is not None else -(-bits // 32))
        expected_bits.append(bits)
    assert obj.uncompressed_size == sum(m * n for m, n in shapes)
    assert obj.compressed_size == sum(op.compressed_size for op in obj.get_compression_ops())
    assert obj.compressed_bits == sum(expected_bits)
    assert obj.compression_ratio == pytest.approx(obj.uncompressed_bits / sum(expected_bits))
    assert obj.compression_ratio > 1


def test_matmul_and_embedding_forms_equal_the_weight():
    rng = np.random.default_rng(4)
    a = tf.Variable(rng.standard_normal((10, 6)).astype(np.float32))
    obj = compression_wrapper.get_apply_compression(_spec(1, 0))
    obj.apply_compression(a, "lookup")
    op = obj.get_last_compression_op()
    for step in range(11):
        op.update(step)
    x = tf.constant(rng.standard_normal((3, 6)).astype(np.float32))
    ids = tf.constant([0, 4, 9])
    weight = op.get_weight().numpy()
    np.testing.assert_allclose(op.get_apply_matmul(x).numpy(), x.numpy() @ weight.T, atol=1e-5)
    np.testing.assert_allclose(
        op.get_apply_embedding_lookup(ids).numpy(), weight[[0, 4, 9]], atol=1e-6
    )


def test_tf2_summaries_under_a_default_writer(tmp_path):
    obj = compression_wrapper.get_apply_compression(_spec(1, 0))
    obj.apply_compression(tf.Variable(tf.ones([6, 4])), "summarised")
    obj.update(5)
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        obj.add_compression_summaries(step=5)
        tf.function(lambda: obj.add_compression_summaries(step=6))()
    writer.flush()
    tags = set()
    for path in glob.glob(os.path.join(str(tmp_path), "events*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    for name in (
        "alpha",
        "last_alpha_update_step",
        "reconstruction_error",
        "b_matrix_norm",
        "c_matrix_norm",
        "a_matrix_norm",
    ):
        assert f"summarised/{name}" in tags, tags
    assert obj.add_compression_summaries(step=7) == [[]]  # no writer: nothing computed


def test_tf1_summaries_are_added_to_the_graph():
    with tf.Graph().as_default():
        global_step = tf.compat.v1.train.get_or_create_global_step()
        obj = compression_wrapper.get_apply_compression(_spec(1, 0), global_step=global_step)
        obj.apply_compression(tf.compat.v1.get_variable("w", [6, 4]), "graph_summaries")
        merged = tf.compat.v1.summary.merge_all()
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            summary = tf.compat.v1.Summary.FromString(sess.run(merged))
    tags = {value.tag for value in summary.value}
    assert any("alpha" in tag for tag in tags) and any("reconstruction_error" in t for t in tags)


# --- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "hparams, name",
    [
        ("begin_compression_step=-1", "begin_compression_step"),
        ("begin_compression_step=10,end_compression_step=5", "end_compression_step"),
        ("compression_frequency=0", "compression_frequency"),
        ("rank=0", "rank"),
        ("rank=-5", "rank"),
        ("alpha_decrement_value=0", "alpha_decrement_value"),
        ("alpha_decrement_value=1.5", "alpha_decrement_value"),
        ("compression_option=7", "compression_option"),
        ("compression_option=11", "compression_option"),
        ("update_option=4", "update_option"),
    ],
)
def test_bad_specs_raise_at_construction_naming_the_hparam(hparams, name):
    spec = compression_op.CompressionOp.get_default_hparams().parse(hparams)
    with pytest.raises(ValueError, match=name):
        compression_wrapper.get_apply_compression(spec)
    with pytest.raises(ValueError, match=name):
        compression_op.CompressionOp(spec=spec)


def test_bad_weights_raise_naming_the_rule():
    spec = compression_op.CompressionOp.get_default_hparams().parse(
        "compression_option=4,rank=4,block_size=3"
    )
    obj = compression_wrapper.get_apply_compression(spec)
    with pytest.raises(ValueError, match="block_size"):
        obj.apply_compression(tf.Variable(tf.zeros([4, 8])), "indivisible")
    for shape in ([4, 3, 3], [12]):
        with pytest.raises(ValueError, match="2-D"):
            obj.apply_compression(tf.Variable(tf.zeros(shape)), "not2d")
    with pytest.raises(ValueError, match="global_step"):
        with tf.Graph().as_default():
            lr_obj = compression_wrapper.get_apply_compression(
                compression_op.CompressionOp.get_default_hparams()
            )
            lr_obj.apply_compression(tf.compat.v1.get_variable("w", [4, 4]), "no_step")


def test_module_level_apply_compression_keeps_state_on_the_weight():
    weights = tf.Variable(tf.ones([8, 4]))
    first = tf_matcomp.apply_compression(weights, spec="rank=200", scope="module_level")
    again = tf_matcomp.apply_compression(weights)
    obj = tf_matcomp.get_compression(weights)
    assert len(obj.get_compression_ops()) == 1
    np.testing.assert_array_equal(first.numpy(), again.numpy())
    with pytest.raises(ValueError, match="different spec"):
        tf_matcomp.apply_compression(weights, spec="rank=300")
    other = tf.Variable(tf.ones([8, 4]))
    tf_matcomp.apply_compression(other, spec="rank=200")
    assert tf_matcomp.get_compression(other) is not obj


def test_low_rank_uses_randomized_svd_threshold_constant():
    assert low_rank.EXACT_SVD_MAX_DIM == 1024
