"""Magnitude pruning + k-means (option 8): the sparsity schedule and block masks against NumPy
oracles, the k-means of the survivors (Lloyd fixed point, zero code), exact sizes, mask and
codebook updating together in every update option and mode (eager, tf.function, jit_compile, TF1
graph), checkpoints, the packed stored form (bytes and Â against NumPy counts and oracles, every
layout and edge case), Keras compress / fit / strip / .keras / export / TFLite, the CLI and bad
hparams."""

import math
import warnings

import numpy as np
import pytest
import tensorflow as tf

import tf_matcomp.keras as mk
from tf_matcomp import cli, compression_op, compression_wrapper
from tf_matcomp.compressors import (
    bit_packing,
    magnitude_pruning,
    pruned_kmeans,
    pruned_kmeans_packed,
    registry,
)

import method_contract as contract
from conftest import run_in_mode

SHAPE = (16, 12)
CODES = 8  # 7 centroids + the zero code
PRUNED = CODES - 1
# Mask updates at 2, 5, 8, ...; sparsity reaches 0.75 at step 20; alpha steps at 4, 9, 14, 19.
SCHEDULE = (
    f"compression_option=8,rank={CODES},begin_compression_step=0,compression_frequency=5,"
    "alpha_decrement_value=0.25,pruning_frequency=3,target_sparsity=0.75,"
    "sparsity_function_end_step=20"
)
STEPS = range(30)


def _spec(text=SCHEDULE, **overrides):
    spec = compression_op.CompressionOp.get_default_hparams().parse(text)
    for key, value in overrides.items():
        spec.set_hparam(key, value)
    return spec


def _compressor(text=SCHEDULE, **overrides):
    return compression_wrapper.make_compressor(_spec(text, **overrides))


def _op(a, update_option=0, text=SCHEDULE, **overrides):
    spec = _spec(text, update_option=update_option, **overrides)
    apply = compression_wrapper.get_apply_compression(spec)
    apply.apply_compression(tf.Variable(a), scope="w")
    return apply.get_last_compression_op()


# --- oracles ----------------------------------------------------------------------------------
def oracle_sparsity(step, initial=0.0, target=0.75, begin=0, end=20, exponent=3.0):
    p = min(1.0, max(0.0, (step - begin) / (end - begin)))
    return target + (initial - target) * (1 - p) ** exponent


def oracle_mask(w, sparsity, height, width, pooling):
    """Blocks scored one by one, kept by a stable sort: an independent loop implementation."""
    m, n = w.shape
    height = m if height == -1 else min(height, m)
    width = n if width == -1 else min(width, n)
    starts = [(i, j) for i in range(0, m, height) for j in range(0, n, width)]
    scores = []
    for i, j in starts:
        cells = np.abs(w[i : i + height, j : j + width]).astype(np.float64)
        scores.append(cells.max() if pooling == "MAX" else cells.mean())
    kept = int(round(len(starts) * (1 - sparsity)))  # Python's round: half to even, as the code
    order = sorted(range(len(starts)), key=lambda b: -scores[b])  # sorted() is stable
    mask = np.zeros(w.shape, bool)
    for b in order[:kept]:
        i, j = starts[b]
        mask[i : i + height, j : j + width] = True
    return mask


def dense(codebook, codes):
    """Â in NumPy: the codebook with the zero row appended, looked up by the codes."""
    codebook = np.asarray(codebook)
    codes = np.asarray(codes).astype(np.int64)
    with_zero = np.concatenate([codebook, np.zeros((1, codebook.shape[1]), codebook.dtype)])
    return with_zero[codes].reshape(codes.shape[0], -1)


def assert_lloyd_fixed_point_of_survivors(w, codebook, codes, block_size=1):
    """Each kept block is coded by its nearest centroid and each used centroid is the mean of
    its blocks (valid when every kept block enters the clustering equally often)."""
    points = np.asarray(w, np.float64).reshape(-1, block_size)
    codes = np.asarray(codes).reshape(-1).astype(np.int64)
    kept = codes != PRUNED
    distances = ((points[kept, None, :] - codebook[None].astype(np.float64)) ** 2).sum(-1)
    chosen = distances[np.arange(kept.sum()), codes[kept]]
    np.testing.assert_allclose(chosen, distances.min(1), rtol=1e-6, atol=1e-9)
    for j in np.unique(codes[kept]):
        np.testing.assert_allclose(
            codebook[j], points[kept][codes[kept] == j].mean(0), rtol=1e-5, atol=1e-6
        )


# --- the schedule and the masks -----------------------------------------------------------------
def test_sparsity_follows_the_peer_formula_in_python_and_tf():
    schedule = _compressor().sparsity_schedule
    for step in [0, 1, 2, 5, 10, 19, 20, 21, 100]:
        expected = oracle_sparsity(step)
        assert schedule.sparsity(step) == pytest.approx(expected, abs=1e-12)
        assert float(schedule.sparsity_tf(tf.constant(step, tf.int64))) == pytest.approx(
            expected, abs=1e-12
        )
    shifted = _compressor(
        initial_sparsity=0.2,
        sparsity_function_begin_step=10,
        sparsity_function_end_step=30,
        sparsity_function_exponent=1.5,
    ).sparsity_schedule
    for step in [0, 10, 15, 29, 30, 50]:
        assert shifted.sparsity(step) == pytest.approx(
            oracle_sparsity(step, 0.2, 0.75, 10, 30, 1.5), abs=1e-12
        )
    assert schedule.firing.firing_steps(range(12)) == [2, 5, 8, 11]
    ended = _compressor(SCHEDULE + ",begin_pruning_step=4,end_pruning_step=9").sparsity_schedule
    assert ended.firing.firing_steps(range(30)) == [4, 7]


@pytest.mark.parametrize("pooling", ["AVG", "MAX"])
@pytest.mark.parametrize("height, width", [(1, 1), (2, 3), (3, 5), (-1, 2), (4, -1)])
@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.9])
def test_block_masks_match_the_oracle_in_numpy_and_tf(pooling, height, width, sparsity, rng):
    w = rng.standard_normal(SHAPE).astype(np.float32)
    w[3, :4] = w[3, 5]  # ties: the earlier block wins
    masker = magnitude_pruning.BlockMasker(height, width, pooling)
    expected = oracle_mask(w, sparsity, height, width, pooling)
    np.testing.assert_array_equal(masker.np_mask(w, sparsity), expected)
    tf_mask = masker.tf_mask(tf.constant(w), tf.constant(sparsity, tf.float64))
    np.testing.assert_array_equal(tf_mask.numpy(), expected)
    compiled = tf.function(
        lambda x: masker.tf_mask(x, tf.constant(sparsity, tf.float64)), jit_compile=True
    )
    np.testing.assert_array_equal(compiled(w).numpy(), expected)


# --- the compressor -----------------------------------------------------------------------------
@pytest.mark.parametrize("block_size, block_width", [(1, 1), (2, 2), (2, 4), (3, 6)])
def test_one_shot_prunes_to_target_and_quantizes_the_survivors(block_size, block_width, rng):
    a = rng.standard_normal(SHAPE).astype(np.float32)
    compressor = _compressor(
        SCHEDULE, block_size=block_size, block_width=block_width, target_sparsity=0.5
    )
    codebook, codes = compressor.static_matrix_compressor(a)
    assert codebook.shape == (CODES - 1, block_size) and codes.dtype == np.uint8
    assert codes.shape == (SHAPE[0], SHAPE[1] // block_size)
    mask = oracle_mask(a, 0.5, 1, block_width, "AVG")
    w_hat = dense(codebook, codes)
    np.testing.assert_array_equal(w_hat != 0, mask)  # zero exactly where pruned
    np.testing.assert_array_equal(np.repeat(codes != PRUNED, block_size, 1), mask)
    assert_lloyd_fixed_point_of_survivors(a, codebook, codes, block_size)
    tf_codebook, tf_codes = compressor.tpu_matrix_compressor(tf.constant(a))
    np.testing.assert_array_equal(tf_codebook.numpy(), codebook)  # same C++ core as the kernel
    np.testing.assert_array_equal(tf_codes.numpy(), codes)
    form = compressor.form(SHAPE)
    np.testing.assert_array_equal(form.matrix([tf_codebook, tf_codes]).numpy(), w_hat)


def test_one_shot_compiles_under_xla_with_the_same_mask(rng):
    a = rng.standard_normal(SHAPE).astype(np.float32)
    compressor = _compressor(SCHEDULE, target_sparsity=0.5)
    codebook, codes = tf.function(compressor.tpu_matrix_compressor, jit_compile=True)(a)
    np.testing.assert_array_equal(codes.numpy() != PRUNED, oracle_mask(a, 0.5, 1, 1, "AVG"))
    assert_lloyd_fixed_point_of_survivors(a, codebook.numpy(), codes.numpy())
    native = dense(*compressor.static_matrix_compressor(a))
    composite = dense(codebook.numpy(), codes.numpy())
    error = np.linalg.norm(a - composite) / np.linalg.norm(a)
    assert error <= 1.25 * np.linalg.norm(a - native) / np.linalg.norm(a) + 1e-6


def test_zero_code_is_never_trained_and_the_mask_is_implied(rng):
    form = _compressor().form(SHAPE)
    codebook = tf.Variable(rng.standard_normal((CODES - 1, 1)).astype(np.float32))
    codes = rng.integers(0, CODES, SHAPE).astype(np.uint8)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(form.matrix([codebook, tf.constant(codes)]) ** 2)
    gradient = tf.convert_to_tensor(tape.gradient(loss, codebook)).numpy()
    expected = [2 * codebook.numpy()[j, 0] * np.sum(codes == j) for j in range(CODES - 1)]
    np.testing.assert_allclose(gradient[:, 0], expected, rtol=1e-5)
    a = rng.standard_normal(SHAPE).astype(np.float32)
    blended = form.blend(tf.constant(a), [codebook, tf.constant(codes)], 0.25).numpy()
    w_hat = dense(codebook.numpy(), codes)
    np.testing.assert_allclose(blended, 0.25 * a * (codes != PRUNED) + 0.75 * w_hat, rtol=1e-6)


@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16, tf.float32, tf.float64])
@pytest.mark.parametrize("codes, block_size", [(8, 1), (16, 4), (256, 2), (257, 1)])
def test_sizes_and_ratio_are_exact(dtype, codes, block_size):
    form = _compressor(SCHEDULE, rank=codes, block_size=block_size, block_width=4).form(
        SHAPE, dtype
    )
    code_bytes = 1 if codes <= 256 else 4
    expected = (codes - 1) * block_size * dtype.size + SHAPE[0] * SHAPE[
        1
    ] // block_size * code_bytes
    assert form.nbytes() == expected
    op = _op(
        np.zeros(SHAPE, dtype.as_numpy_dtype), rank=codes, block_size=block_size, block_width=4
    )
    assert op.compressed_bits == 8 * expected
    assert op.uncompressed_bits == 8 * SHAPE[0] * SHAPE[1] * dtype.size
    assert op.compression_ratio == SHAPE[0] * SHAPE[1] * dtype.size / expected


# --- the stored (packed) form: bytes that follow the mask ------------------------------------------
def oracle_pack(values, width):
    """Bytes of `values` packed `width` bits each, LSB first, by a loop over the bits."""
    out = bytearray(-(-len(values) * width // 8))
    for i, value in enumerate(values):
        for bit in range(width):
            t = i * width + bit
            out[t // 8] |= ((int(value) >> bit) & 1) << (t % 8)
    return np.frombuffer(bytes(out), np.uint8)


def oracle_group(kept):
    """The largest divisor g of len(kept) with kept constant on runs of g, by brute force."""
    for g in range(len(kept), 0, -1):
        if len(kept) % g == 0 and all(
            len(set(kept[i : i + g])) == 1 for i in range(0, len(kept), g)
        ):
            return g


def oracle_stored_bytes(num_codes, block_size, codes, itemsize=4):
    """The stored bytes counted in NumPy: codebook + the smaller of (mask per group + kept
    codes at ceil(log2(K − 1)) bits) and (all codes at ceil(log2 K) bits)."""
    kept = (np.asarray(codes) != num_codes - 1).reshape(-1)
    blocks, count = kept.size, int(kept.sum())
    bits = [math.ceil(math.log2(v)) if v > 1 else 0 for v in (num_codes - 1, num_codes)]
    mask = 0 if count in (0, blocks) else math.ceil(blocks / oracle_group(list(kept)) / 8)
    sparse = mask + math.ceil(count * bits[0] / 8)
    dense = math.ceil(blocks * bits[1] / 8)
    return (num_codes - 1) * block_size * itemsize + min(sparse, dense)


def _random_codes(rng, num_codes, shape, sparsity, group):
    """Codes [m, n] with about `sparsity` of the blocks pruned, in runs of `group` blocks."""
    runs = rng.random(shape[0] * shape[1] // group) < sparsity
    pruned = np.repeat(runs, group).reshape(shape)
    codes = rng.integers(0, num_codes - 1, shape)
    return np.where(pruned, num_codes - 1, codes).astype(np.int64)


@pytest.mark.parametrize("width", [1, 3, 4, 5, 8, 17])
def test_bit_packing_matches_a_loop_and_unpacks_in_every_mode(width, mode, rng):
    values = rng.integers(0, 1 << width, 37)
    packed = bit_packing.np_pack(values, width)
    np.testing.assert_array_equal(packed, oracle_pack(values, width))
    got = run_in_mode(mode, lambda p: bit_packing.unpack(p, 37, width), tf.constant(packed))
    np.testing.assert_array_equal(got.numpy(), values)
    with pytest.raises(ValueError, match=f"2\\^{width}"):
        bit_packing.np_pack([1 << width], width)


def _packed(rng, num_codes, block_size, sparsity, group, shape=(8, 12)):
    """(codebook, codes, packed form, its arrays) of random codes pruned at `sparsity`."""
    codes = _random_codes(rng, num_codes, (shape[0], shape[1] // block_size), sparsity, group)
    codebook = rng.standard_normal((num_codes - 1, block_size)).astype(np.float32)
    training = pruned_kmeans.PrunedKMeansForm(*shape, num_codes, block_size)
    code_dtype = training.variables()[1][2]
    form, arrays = training.deployed_form({"codebook": codebook, "codes": codes.astype(code_dtype)})
    return codebook, codes, form, arrays


@pytest.mark.parametrize("num_codes", [2, 3, 8, 16, 17, 257])
@pytest.mark.parametrize("block_size", [1, 2, 3])
@pytest.mark.parametrize(
    "sparsity, group", [(0.0, 1), (0.3, 1), (0.5, 2), (0.9, 1), (0.9, 2), (1.0, 1)]
)
def test_stored_bytes_and_matrix_equal_the_oracles(num_codes, block_size, sparsity, group, rng):
    codebook, codes, form, arrays = _packed(rng, num_codes, block_size, sparsity, group)
    assert form.kind == "pruned_kmeans_packed"
    assert form.nbytes() == oracle_stored_bytes(num_codes, block_size, codes)
    assert sum(a.nbytes for a in arrays.values()) == form.nbytes()
    assert [name for name, _, _ in form.variables()] == list(arrays)
    assert form.num_kept == int(np.sum(codes != num_codes - 1))
    w_hat = form.matrix([tf.constant(a) for a in arrays.values()]).numpy()
    np.testing.assert_array_equal(w_hat, dense(codebook, codes))  # exactly, every layout
    reloaded = registry.form_from_config(form.get_config(), implementation="composite")
    assert reloaded.variables() == form.variables()


@pytest.mark.parametrize("num_codes, sparsity, group", [(16, 0.5, 2), (17, 0.0, 1), (2, 0.6, 1)])
def test_packed_matrix_in_tf_function_and_xla(num_codes, sparsity, group, mode, rng):
    codebook, codes, form, arrays = _packed(rng, num_codes, 2, sparsity, group)
    tensors = [tf.constant(a) for a in arrays.values()]
    w_hat = run_in_mode(mode, lambda *t: form.matrix(list(t)), *tensors).numpy()
    np.testing.assert_array_equal(w_hat, dense(codebook, codes))


def test_packed_layouts_of_the_edge_cases(rng):
    shape, blocks = (4, 8), 32
    codebook = np.ones((7, 1), np.float32)
    cases = {  # codes -> (layout, stored names)
        "all pruned": (np.full(shape, 7), "sparse", ["codebook"]),
        "none pruned": (rng.integers(0, 7, shape), "dense", ["codebook", "codes"]),  # a tie
        "half": (
            _random_codes(rng, 8, shape, 0.5, 1),
            "sparse",
            ["codebook", "keep_bits", "codes"],
        ),
    }
    for name, (codes, layout, names) in cases.items():
        form, arrays = pruned_kmeans.PrunedKMeansForm(*shape, 8, 1).deployed_form(
            {"codebook": codebook, "codes": codes.astype(np.uint8)}
        )
        assert (form.layout, list(arrays)) == (layout, names), name
    # K = 2: one centroid, the mask is all there is; stored as 1 bit per block either way.
    codes = _random_codes(rng, 2, shape, 0.5, 1)
    form, arrays = pruned_kmeans.PrunedKMeansForm(*shape, 2, 1).deployed_form(
        {"codebook": codebook[:1], "codes": codes.astype(np.uint8)}
    )
    assert form.nbytes() == 4 + blocks // 8
    np.testing.assert_array_equal(
        form.matrix([tf.constant(a) for a in arrays.values()]).numpy(), dense(codebook[:1], codes)
    )


@pytest.mark.parametrize(
    "overrides, name",
    [
        ({"num_kept": 33}, "num_kept"),
        ({"num_kept": -1}, "num_kept"),
        ({"mask_group": 5}, "mask_group"),
        ({"num_codes": 1}, "num_codes"),
        ({"block_size": 3}, "block_size"),
    ],
)
def test_bad_packed_configs_name_the_argument(overrides, name):
    config = {"rows": 4, "cols": 8, "num_codes": 8, "block_size": 1, "num_kept": 3, **overrides}
    with pytest.raises(ValueError, match=name):
        pruned_kmeans_packed.PackedPrunedKMeansForm(**config)


def test_pack_refuses_codes_that_break_the_form(rng):
    form = pruned_kmeans_packed.PackedPrunedKMeansForm(4, 8, 8, 1, num_kept=16, mask_group=2)
    with pytest.raises(ValueError, match="16 kept"):
        form.pack(np.full((4, 8), 7))
    codes = np.where(np.arange(32).reshape(4, 8) % 2 == 0, 0, 7)  # alternate: runs of 1
    with pytest.raises(ValueError, match="mask_group=2"):
        form.pack(codes)


# --- updates: mask and codebook move together ----------------------------------------------------
def _trajectory(op, session=None, update=None):
    """(step, alpha, sparsity of Â's codes, codebook) after each step's update."""
    history = []
    for step in STEPS:
        update(step)
        factors = [
            np.asarray(f)
            for f in (session.run(op.factor_variables) if session else op.factor_variables)
        ]
        alpha = float(session.run(op.alpha) if session else op.alpha)
        history.append((step, alpha, float(np.mean(factors[1] == PRUNED)), factors))
    return history


def _check_schedule(history, block_count=SHAPE[0] * SHAPE[1]):
    mask_steps = [2, 5, 8, 11, 14, 17, 20, 23, 26, 29]
    codebooks = {}
    for step, alpha, sparsity, (codebook, codes) in history:
        last_mask = max([s for s in mask_steps if s <= step], default=None)
        expected = (
            0.0 if last_mask is None else round(block_count * (1 - oracle_sparsity(last_mask)))
        )
        assert sparsity == pytest.approx(
            1 - expected / block_count if last_mask is not None else 0.0
        )
        assert alpha == max(0.0, 1 - 0.25 * len([s for s in (4, 9, 14, 19) if s <= step]))
        codebooks[step] = codebook
    for step in mask_steps[1:6]:  # every mask update that changes the mask: a new codebook
        assert not np.array_equal(codebooks[step], codebooks[step - 1]), step


@pytest.mark.parametrize("update_option", [0, 1, 2])
def test_every_update_option_follows_both_schedules_eagerly(update_option, rng):
    a = rng.standard_normal(SHAPE).astype(np.float32)
    op = _op(a, update_option)

    def update(step):
        with warnings.catch_warnings():
            warnings.simplefilter("error", compression_op.SkippedUpdateWarning)
            op.update(step)
            op.run_update_step(step_number=step)

    history = _trajectory(op, update=update)
    _check_schedule(history)
    w = op.get_weight().numpy()
    codebook, codes = (np.asarray(f) for f in op.factor_variables)
    np.testing.assert_array_equal(w, dense(codebook, codes))  # alpha 0: W = Â
    assert float(np.mean(w == 0)) == pytest.approx(0.75)


def test_tf_ops_and_python_updates_give_the_same_factors(rng):
    a = rng.standard_normal(SHAPE).astype(np.float32)
    by_tf, by_python = _op(a, 0), _op(a, 1)
    tf_history = _trajectory(by_tf, update=by_tf.update)
    python_history = _trajectory(
        by_python, update=lambda s: by_python.run_update_step(step_number=s)
    )
    for (_, alpha, _, factors), (_, alpha2, _, factors2) in zip(tf_history, python_history):
        assert alpha == alpha2
        for f, f2 in zip(factors, factors2):
            np.testing.assert_array_equal(f, f2)


def test_update_option_3_never_updates(rng):
    a = rng.standard_normal(SHAPE).astype(np.float32)
    op = _op(a, 3)
    for step in STEPS:
        assert not bool(op.update(step)) and not op.run_update_step(step_number=step)
    np.testing.assert_array_equal(op.get_weight().numpy(), a)
    assert int(op.last_recompression_step.numpy()) == -1


@pytest.mark.parametrize("jit", [False, True])
def test_tf_op_updates_in_tf_function_and_xla(jit, rng):
    a = rng.standard_normal(SHAPE).astype(np.float32)
    op = _op(a, 0)
    x = rng.standard_normal((3, SHAPE[1])).astype(np.float32)

    @tf.function(jit_compile=jit)
    def step(s, x):
        fired = op.update(s)
        return fired, op.get_apply_matmul(x)

    history = _trajectory(op, update=lambda s: step(tf.constant(s, tf.int64), x))
    _check_schedule(history)
    codebook, codes = (np.asarray(f) for f in op.factor_variables)
    w_hat = dense(codebook, codes)
    _, out = step(tf.constant(100, tf.int64), x)  # not a firing step of either schedule
    np.testing.assert_allclose(out.numpy(), x @ w_hat.T, rtol=1e-5, atol=1e-5)
    assert np.all(np.isfinite(codebook))


@pytest.mark.parametrize("update_option", [0, 1, 2, 3])
def test_tf1_graph(update_option, rng):
    a = rng.standard_normal(SHAPE).astype(np.float32)
    eager = _op(a, min(update_option, 1) if update_option != 3 else 3)
    with tf.Graph().as_default():
        global_step = tf.compat.v1.train.get_or_create_global_step()
        spec = _spec(SCHEDULE, update_option=update_option)
        apply = compression_wrapper.get_apply_compression(spec, global_step=global_step)
        weight = apply.apply_compression(tf.compat.v1.get_variable("w", initializer=a), "layer")
        update = apply.all_update_op()
        advance = tf.compat.v1.assign_add(global_step, 1)
        op = apply.get_last_compression_op()
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())

            def step(s):
                sess.run(update)
                if update_option in (1, 2):
                    apply.run_update_step(sess, step_number=s)
                sess.run(advance)

            history = _trajectory(op, session=sess, update=step)
            w = sess.run(weight)
    if update_option == 3:
        np.testing.assert_array_equal(w, a)
        assert all(alpha == 1.0 for _, alpha, _, _ in history)
        return
    _check_schedule(history)
    eager_history = _trajectory(
        eager, update=lambda s: (eager.update(s), eager.run_update_step(step_number=s))
    )
    for (_, alpha, _, factors), (_, alpha2, _, factors2) in zip(history, eager_history):
        assert alpha == alpha2
        for f, f2 in zip(factors, factors2):
            np.testing.assert_array_equal(f, f2)
    np.testing.assert_array_equal(w, dense(*factors))


@pytest.mark.parametrize("update_option", [0, 1])
def test_products_mid_schedule_use_the_pruned_weight(update_option, rng):
    a = rng.standard_normal(SHAPE).astype(np.float32)
    op = _op(a, update_option)
    for step in range(10):  # alpha 0.5, the mask of step 8
        op.update(step)
        op.run_update_step(step_number=step)
    codebook, codes = (np.asarray(f) for f in op.factor_variables)
    assert float(op.alpha) == 0.5 and 0 < np.mean(codes == PRUNED) < 1
    w = 0.5 * a * (codes != PRUNED) + 0.5 * dense(codebook, codes)
    np.testing.assert_allclose(op.get_weight().numpy(), w, rtol=1e-6, atol=1e-6)
    x = rng.standard_normal((3, SHAPE[1])).astype(np.float32)
    np.testing.assert_allclose(op.get_apply_matmul(x).numpy(), x @ w.T, rtol=1e-5, atol=1e-5)
    ids = np.array([3, 0, 3, 15])
    np.testing.assert_allclose(op.get_apply_embedding_lookup(ids).numpy(), w[ids], rtol=1e-6)
    xk = rng.standard_normal((2, SHAPE[0])).astype(np.float32)
    np.testing.assert_allclose(op.get_apply_matmul_keras(xk).numpy(), xk @ w, rtol=1e-5, atol=1e-5)


def test_pruned_weights_stay_pruned_and_updates_start_from_the_layer_weight(rng):
    a = rng.standard_normal(SHAPE).astype(np.float32)
    op = _op(a, 0)
    kept_before = None
    for step in STEPS:
        op.update(step)
        op.a_matrix_tfvar.assign_add(0.5 * rng.standard_normal(SHAPE).astype(np.float32))
        kept = np.asarray(op.factor_variables[1]) != PRUNED
        if kept_before is not None:
            assert not np.any(kept & ~kept_before), step  # masks only shrink
        kept_before = kept


def test_non_finite_weight_skips_the_mask_update_and_warns(rng):
    a = rng.standard_normal(SHAPE).astype(np.float32)
    op = _op(a, 1)
    a[0, 0] = np.nan
    op.a_matrix_tfvar.assign(a)
    with pytest.warns(compression_op.SkippedUpdateWarning, match="non-finite"):
        assert not op.run_update_step(step_number=2)
    assert int(op.skipped_update_count.numpy()) == 1
    assert int(op.last_recompression_step.numpy()) == -1
    # Mid-schedule (alpha 0.75), a mask update reads W, which the NaN in A reaches.
    a[0, 0] = 1.0
    op.a_matrix_tfvar.assign(a)
    for step in range(2, 5):
        op.run_update_step(step_number=step)
    assert float(op.alpha) == 0.75
    factors = [np.asarray(f).copy() for f in op.factor_variables]
    a[0, 0] = np.inf
    op.a_matrix_tfvar.assign(a)
    with pytest.warns(compression_op.SkippedUpdateWarning, match="1 non-finite values"):
        assert not op.run_update_step(step_number=5)
    assert int(op.skipped_update_count.numpy()) == 2
    assert int(op.last_recompression_step.numpy()) == 2
    for f, f2 in zip(op.factor_variables, factors):
        np.testing.assert_array_equal(np.asarray(f), f2)


def test_checkpoint_restore_mid_schedule_continues_identically(rng, tmp_path):
    a = rng.standard_normal(SHAPE).astype(np.float32)
    nudges = [0.1 * rng.standard_normal(SHAPE).astype(np.float32) for _ in STEPS]

    def run(op, steps):
        for step in steps:
            op.update(step)
            op.a_matrix_tfvar.assign_add(nudges[step])
        return [np.asarray(v) for v in op.state_variables]

    first = _op(a, 0)
    run(first, range(12))
    path = tf.train.Checkpoint(op=first, a=first.a_matrix_tfvar).save(str(tmp_path / "ckpt"))
    uninterrupted = run(first, range(12, 30))
    resumed = _op(np.zeros_like(a), 0)
    tf.train.Checkpoint(op=resumed, a=resumed.a_matrix_tfvar).restore(path).assert_consumed()
    assert int(resumed.last_recompression_step.numpy()) == 11
    for value, expected in zip(run(resumed, range(12, 30)), uninterrupted):
        np.testing.assert_array_equal(value, expected)


# --- Keras, strip, export, CLI ---------------------------------------------------------------------
def _mlp(rng):
    inputs = tf.keras.Input((24,))
    hidden = tf.keras.layers.Dense(16, activation="relu", name="hidden")(inputs)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(8, name="out")(hidden))
    for w in model.weights:
        w.assign(rng.standard_normal(w.shape).astype(np.float32) * 0.5)
    return model


@pytest.mark.parametrize("update_option", [0, 1, 2])
def test_keras_fit_strip_save_and_export(update_option, rng, tmp_path):
    model = _mlp(rng)
    spec = (
        "compression_option=8,rank=16,block_size=2,block_width=2,begin_compression_step=0,"
        "compression_frequency=4,alpha_decrement_value=0.5,pruning_frequency=2,"
        f"target_sparsity=0.6,sparsity_function_end_step=6,update_option={update_option}"
    )
    compressed = mk.compress_model(model, spec, layers=["hidden", "out"])
    compressed.compile("adam", "mse")
    x = rng.standard_normal((64, 24)).astype(np.float32)
    y = rng.standard_normal((64, 8)).astype(np.float32)
    callback = mk.CompressionCallback()
    history = compressed.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[callback])
    # 12 steps: mask updates at 1, 3, ..., 11 (alpha's at 3 and 7 among them) are each timed.
    assert len(callback.update_seconds) == 6
    stored = 0
    for layer in mk.compressed_layers(compressed):
        assert float(layer.alpha) == 0.0
        codes = np.asarray(layer.compression.op.factor_variables[1])
        assert np.mean(codes == 15) == pytest.approx(0.6, abs=0.02)
        stored += oracle_stored_bytes(16, 2, codes)  # the mask, the kept codes at 4 bits
    expected = compressed(x[:5]).numpy()
    stripped = mk.strip_compression(compressed)
    assert not mk.compressed_layers(stripped)
    np.testing.assert_allclose(stripped(x[:5]).numpy(), expected, rtol=1e-5, atol=1e-5)
    dense_bytes = mk.model_size(model).bytes
    kernels = 24 * 16 + 16 * 8
    assert mk.model_size(stripped).bytes == dense_bytes - 4 * kernels + stored
    assert mk.compression_ratio(stripped) == dense_bytes / mk.model_size(stripped).bytes
    assert mk.compression_ratio(compressed) == pytest.approx(mk.compression_ratio(stripped))
    # The progress bar's figure follows the mask: at its final sparsity after the last update.
    ratios = history.history["compression_ratio"]
    assert ratios[0] < ratios[-1] == pytest.approx(mk.compression_ratio(stripped), rel=1e-6)
    assert callback.compression_ratio() == mk.compression_ratio(stripped)
    path = str(tmp_path / "m.keras")
    stripped.save(path)
    loaded = tf.keras.models.load_model(path)
    np.testing.assert_allclose(loaded(x[:5]).numpy(), expected, rtol=1e-5, atol=1e-5)
    stripped.export(str(tmp_path / "saved"))
    served = tf.saved_model.load(str(tmp_path / "saved"))
    np.testing.assert_allclose(served.serve(x[:5]).numpy(), expected, rtol=1e-5, atol=1e-5)


ONE_SHOT_HALF = (
    f"compression_option=8,rank=8,{mk.ONE_SHOT_SCHEDULE},initial_sparsity=0.5,"
    "target_sparsity=0.5,pruning_frequency=1"
)


def test_conv_embedding_and_einsum_kinds_compress_strip_and_reload(rng, tmp_path):
    tokens = tf.keras.Input((3,), dtype="int32")
    image = tf.keras.Input((6, 6, 4))
    embedded = tf.keras.layers.Embedding(12, 8, name="embedding")(tokens)
    projected = tf.keras.layers.EinsumDense("abc,cd->abd", (3, 6), bias_axes="d", name="ein")(
        embedded
    )
    conv = tf.keras.layers.Conv2D(8, 3, name="conv")(image)
    conv1d = tf.keras.layers.Conv1D(4, 2, name="conv1d")(projected)
    model = tf.keras.Model([tokens, image], [conv1d, conv])
    compressed = mk.compress_model(model, ONE_SHOT_HALF)
    layers = mk.compressed_layers(compressed)
    assert sorted(layer.name for layer in layers) == ["conv", "conv1d", "ein", "embedding"]
    stored = {}
    for layer in layers:
        layer.run_alpha_update(0)
        codes = np.asarray(layer.compression.op.factor_variables[1])
        assert np.mean(codes == PRUNED) == 0.5
        stored[layer.name] = oracle_stored_bytes(8, 1, codes)
    x = [rng.integers(0, 12, (2, 3)), rng.standard_normal((2, 6, 6, 4)).astype(np.float32)]
    expected = [y.numpy() for y in compressed(x)]
    stripped = mk.strip_compression(compressed)
    for got, want in zip(stripped(x), expected):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5)
    assert mk.compression_ratio(stripped) == pytest.approx(mk.compression_ratio(compressed))
    rows = {row.name: row for row in mk.compression_report(stripped)}
    assert {name: rows[name].bytes_after for name in stored} == stored
    assert {rows[name].method for name in stored} == {"pruned_kmeans_packed"}
    path = str(tmp_path / "stripped.keras")
    stripped.save(path)
    loaded = tf.keras.models.load_model(path)
    for got, want in zip(loaded(x), expected):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5)


def _one_shot_mlp(rng, spec, width):
    inputs = tf.keras.Input((width,))
    hidden = tf.keras.layers.Dense(width, activation="relu", name="hidden")(inputs)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(width, name="out")(hidden))
    compressed = mk.compress_model(model, f"compression_option=8,{spec},{mk.ONE_SHOT_SCHEDULE}")
    for layer in mk.compressed_layers(compressed):
        layer.run_alpha_update(0)
    return model, compressed


@pytest.mark.parametrize(
    "spec",
    [
        "rank=16,initial_sparsity=0.9,target_sparsity=0.9,pruning_frequency=1",
        "rank=16,block_size=2,block_width=4,initial_sparsity=0.5,target_sparsity=0.5",
        "rank=17,initial_sparsity=0,target_sparsity=0,pruning_frequency=1",  # 4 bits, no mask
        "rank=2,initial_sparsity=0.7,target_sparsity=0.7,pruning_frequency=1",  # only the mask
    ],
)
def test_tflite_builtins_equal_the_stripped_model_and_smaller_by_half_the_ratio(
    spec, rng, tmp_path
):
    # The unpacking costs about 7 KB of graph per layer in the .tflite: layers wide enough
    # that this fixed cost stays small next to a 10-20x smaller kernel.
    model, compressed = _one_shot_mlp(rng, spec, width=256)
    stripped = mk.strip_compression(compressed)
    ratio = mk.compression_ratio(stripped)
    assert ratio == pytest.approx(mk.compression_ratio(compressed))
    assert ratio > 4
    x = rng.standard_normal((4, 256)).astype(np.float32)
    np.testing.assert_allclose(stripped(x).numpy(), compressed(x).numpy(), rtol=1e-5, atol=1e-5)
    flatbuffer = contract.exported_tflite(stripped, str(tmp_path / "stripped"))
    got, ops = contract.run_tflite(flatbuffer, x)
    assert not any("FLEX" in op or "CUSTOM" in op for op in ops), ops
    np.testing.assert_allclose(got, stripped(x).numpy(), rtol=1e-5, atol=1e-5)
    dense_size = len(contract.exported_tflite(model, str(tmp_path / "dense")))
    assert dense_size / len(flatbuffer) >= ratio / 2, (dense_size, len(flatbuffer), ratio)


def test_training_form_keras_round_trip_keeps_the_state(rng, tmp_path):
    model = _mlp(rng)
    compressed = mk.compress_model(model, SCHEDULE, layers=["hidden"])
    (layer,) = mk.compressed_layers(compressed)
    for step in range(10):
        layer.run_alpha_update(step)
    path = str(tmp_path / "training.keras")
    compressed.save(path)
    loaded = tf.keras.models.load_model(path, custom_objects=mk.custom_objects())
    (restored,) = mk.compressed_layers(loaded)
    for name in ("alpha", "last_alpha_update_step", "last_recompression_step"):
        assert np.asarray(getattr(restored.compression.op, name)) == np.asarray(
            getattr(layer.compression.op, name)
        )
    for v, v2 in zip(
        restored.compression.op.factor_variables, layer.compression.op.factor_variables
    ):
        np.testing.assert_array_equal(np.asarray(v), np.asarray(v2))
    x = rng.standard_normal((4, 24)).astype(np.float32)
    np.testing.assert_array_equal(loaded(x).numpy(), compressed(x).numpy())


def test_cli_compress_with_the_method(rng, tmp_path, capsys):
    source, out = str(tmp_path / "in.keras"), str(tmp_path / "out.keras")
    _mlp(rng).save(source)
    one_shot_pruning = "initial_sparsity=0.5,target_sparsity=0.5,pruning_frequency=1"
    argv = ["compress", source, "--method", "pruned_kmeans", "--ratio", "3", "-o", out]
    assert cli.main(argv + ["--spec", one_shot_pruning]) == 0
    assert "pruned_kmeans" in capsys.readouterr().out
    loaded = tf.keras.models.load_model(out, custom_objects=mk.custom_objects())
    assert mk.compression_ratio(loaded) > 2
    hidden = loaded.get_layer("hidden")
    assert hidden.form.num_kept / hidden.form.num_blocks == pytest.approx(0.5)
    assert mk.compression_report(loaded)[0].bytes_after == hidden.form.nbytes()


def test_ratio_hook_reaches_the_target():
    method = registry.method_named("pruned_kmeans")
    for shape in ((24, 16), (64, 32), (96, 96)):
        for ratio in (2, 4, 8):
            spec = method.spec_for_ratio(_spec("compression_option=8"), shape, ratio)
            form = method.make_compressor(spec).form(shape)
            assert form.dense_nbytes() >= ratio * form.nbytes(), (shape, ratio, form.label())


# --- bad hparams ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, name",
    [
        ("rank=1", "rank"),
        ("target_sparsity=1.0", "target_sparsity"),
        ("initial_sparsity=-0.1", "initial_sparsity"),
        (
            "sparsity_function_begin_step=20,sparsity_function_end_step=20",
            "sparsity_function_end_step",
        ),
        ("sparsity_function_begin_step=-1", "sparsity_function_begin_step"),
        ("sparsity_function_exponent=0", "sparsity_function_exponent"),
        ("pruning_frequency=0", "pruning_frequency"),
        ("begin_pruning_step=-1", "begin_pruning_step"),
        ("begin_pruning_step=10,end_pruning_step=10", "end_pruning_step"),
        ("block_pooling_function=MIN", "block_pooling_function"),
        ("block_height=0", "block_height"),
        ("block_width=-2", "block_width"),
        ("prune_option=first_order_gradient", "prune_option"),
        ("weight_sparsity_map=[dense:0.5]", "weight_sparsity_map"),
        ("block_dims_map=[dense:2x2]", "block_dims_map"),
        ("block_size=4,block_width=2", "block_width"),
        ("block_size=5", "block_size"),
    ],
)
def test_bad_hparams_are_value_errors_naming_them(text, name):
    with pytest.raises(ValueError, match=name):
        apply = compression_wrapper.get_apply_compression(_spec().parse(text))
        apply.apply_compression(tf.Variable(tf.zeros(SHAPE)), scope="w")


def test_the_zero_code_is_the_last_and_codes_widen_past_256():
    assert pruned_kmeans.pruned_code(CODES) == PRUNED
    assert _compressor(SCHEDULE, rank=256).form(SHAPE).variables()[1][2] == "uint8"
    assert _compressor(SCHEDULE, rank=257).form(SHAPE).variables()[1][2] == "int32"
    assert math.isclose(_compressor().sparsity_schedule.sparsity(20), 0.75)
