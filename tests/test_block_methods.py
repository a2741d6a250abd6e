"""Block-diagonal (option 10) and mixed-block (option 12): NumPy oracles, exact sizes, every
update option in every mode (eager, tf.function, jit_compile, TF1 graph), loop == mask, Keras
compress / strip / export, the CLI and bad hparams."""

import numpy as np
import pytest
import tensorflow as tf

import method_contract as contract
import tf_matcomp.keras as mk
from tf_matcomp import cli, compression_wrapper
from tf_matcomp.compressors import block_diagonal, mixed_block, registry

SHAPE = (24, 16)
BLOCK = "compression_option=10,block_compression_factor=4"
MIXED = "compression_option=12,compression_factor=4,num_bases=3"
SPECS = {
    "block_loop": f"{BLOCK},block_method=loop",
    "block_mask": f"{BLOCK},block_method=mask",
    "mixedblock": MIXED,
}


_spec = contract.parse


def _compressor(text):
    return compression_wrapper.make_compressor(_spec(text))


def _np_block_diagonal(a, f):
    """A's diagonal blocks, each kept, everything else zeroed."""
    r, c = a.shape[0] // f, a.shape[1] // f
    out = np.zeros_like(a)
    for i in range(f):
        out[i * r : (i + 1) * r, i * c : (i + 1) * c] = a[i * r : (i + 1) * r, i * c : (i + 1) * c]
    return out


def _np_mixed(bases, coefficients):
    return np.block([[np.tensordot(mix, bases, axes=1) for mix in row] for row in coefficients])


def _oracle(name, factors):
    if name.startswith("block"):
        (blocks,) = factors
        dense = np.zeros(SHAPE, np.float32)
        r, c = blocks.shape[1:]
        for i, block in enumerate(blocks):
            dense[i * r : (i + 1) * r, i * c : (i + 1) * c] = block
        return dense
    return _np_mixed(*factors)


# --- algorithms against NumPy oracles ---------------------------------------------------------
@pytest.mark.parametrize("method", ["loop", "mask"])
def test_block_diagonal_keeps_the_diagonal_blocks_of_a(method, rng):
    a = rng.standard_normal(SHAPE).astype(np.float32)
    compressor = _compressor(f"{BLOCK},block_method={method}")
    (blocks,) = compressor.static_matrix_compressor(a)
    assert blocks.shape == (4, 6, 4)
    (tf_blocks,) = compressor.tpu_matrix_compressor(tf.constant(a))
    np.testing.assert_array_equal(tf_blocks.numpy(), blocks)
    w_hat = compressor.form(SHAPE).matrix([tf.constant(blocks)]).numpy()
    np.testing.assert_array_equal(w_hat, _np_block_diagonal(a, 4))


def test_mixed_block_is_the_least_squares_fit(rng):
    a = rng.standard_normal(SHAPE).astype(np.float64)
    compressor = _compressor(MIXED)
    bases, coefficients = compressor.static_matrix_compressor(a)
    assert bases.shape == (3, 6, 4) and coefficients.shape == (4, 4, 3)
    assert bases.dtype == coefficients.dtype == np.float64
    error = np.linalg.norm(a - _np_mixed(bases, coefficients))
    # Eckart–Young on the 16 blocks as rows: the best 3-term mix leaves the tail singular values.
    rows = np.stack(
        [a[i * 6 : i * 6 + 6, j * 4 : j * 4 + 4].ravel() for i in range(4) for j in range(4)]
    )
    singular = np.linalg.svd(rows, compute_uv=False)
    assert error == pytest.approx(np.sqrt(np.sum(singular[3:] ** 2)), rel=1e-9)
    tf_bases, tf_coefficients = compressor.tpu_matrix_compressor(tf.constant(a))
    np.testing.assert_allclose(
        _np_mixed(tf_bases.numpy(), tf_coefficients.numpy()),
        _np_mixed(bases, coefficients),
        atol=1e-9,
    )
    # A matrix that is such a mix is fitted exactly.
    exact = _np_mixed(bases, coefficients)
    np.testing.assert_allclose(
        _np_mixed(*compressor.static_matrix_compressor(exact)), exact, atol=1e-9
    )


def test_loop_and_mask_give_the_same_products(rng):
    a = rng.standard_normal(SHAPE).astype(np.float32)
    factors = [tf.constant(f) for f in _compressor(BLOCK).static_matrix_compressor(a)]
    x = tf.constant(rng.standard_normal((2, 3, 24)).astype(np.float32))
    xt = tf.constant(rng.standard_normal((5, 16)).astype(np.float32))
    ids = tf.constant([[0, 23], [7, 12]])
    forms = [_compressor(f"{BLOCK},block_method={m}").form(SHAPE) for m in ("loop", "mask")]
    results = [
        [
            form.matrix(factors),
            form.matmul(x, factors),
            form.transposed_matmul(xt, factors),
            form.gather_rows(ids, factors),
            form.blend(tf.constant(a), factors, 0.3),
        ]
        for form in forms
    ]
    w = _np_block_diagonal(a, 4)
    oracles = [w, x.numpy() @ w, xt.numpy() @ w.T, w[ids.numpy()], 0.3 * a + 0.7 * w]
    for loop, mask, oracle in zip(*results, oracles):
        np.testing.assert_allclose(loop.numpy(), mask.numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(loop.numpy(), oracle, rtol=1e-5, atol=1e-5)


def test_mixed_block_products_follow_the_split_convention(rng):
    a = rng.standard_normal((64, 32)).astype(np.float32)
    compressor = _compressor("compression_option=12,compression_factor=8,num_bases=2")
    form = compressor.form(a.shape)
    assert form.factored_is_cheaper()
    factors = [tf.constant(f) for f in compressor.static_matrix_compressor(a)]
    w = _np_mixed(*(f.numpy() for f in factors))
    x = rng.standard_normal((2, 3, 64)).astype(np.float32)
    xt = rng.standard_normal((4, 32)).astype(np.float32)
    ids = np.array([[63, 0, 9]])
    tol = dict(rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(form.matrix(factors).numpy(), w, **tol)
    np.testing.assert_allclose(form.matmul(tf.constant(x), factors).numpy(), x @ w, **tol)
    np.testing.assert_allclose(
        form.transposed_matmul(tf.constant(xt), factors).numpy(), xt @ w.T, **tol
    )
    np.testing.assert_allclose(form.gather_rows(ids, factors).numpy(), w[ids], **tol)
    jit = tf.function(lambda v: form.matmul(v, factors), jit_compile=True)
    np.testing.assert_allclose(jit(tf.constant(x)).numpy(), x @ w, **tol)


# --- sizes ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16, tf.float32, tf.float64])
def test_sizes_and_ratio_are_exact(dtype):
    block = _compressor(BLOCK).form(SHAPE, dtype)
    mixed = _compressor(MIXED).form(SHAPE, dtype)
    assert block.nbytes() == 4 * 6 * 4 * dtype.size == block.dense_nbytes() // 4
    assert mixed.nbytes() == 3 * (6 * 4 + 4 * 4) * dtype.size
    variable = tf.Variable(tf.zeros(SHAPE, dtype))
    for text, form in ((BLOCK, block), (MIXED, mixed)):
        apply = compression_wrapper.get_apply_compression(_spec(text))
        apply.apply_compression(variable, scope="w")
        op = apply.get_last_compression_op()
        assert op.compressed_bits == 8 * form.nbytes()
        assert op.compression_ratio == pytest.approx(form.dense_nbytes() / form.nbytes())


# --- bad hparams --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, name",
    [
        ("compression_option=10,block_compression_factor=5", "block_compression_factor"),
        ("compression_option=10,block_compression_factor=0", "block_compression_factor"),
        ("compression_option=10,block_compression_factor=2,block_method=diag", "block_method"),
        ("compression_option=12,compression_factor=3,num_bases=1", "compression_factor"),
        ("compression_option=12,compression_factor=-2,num_bases=1", "compression_factor"),
        ("compression_option=12,compression_factor=2,num_bases=0", "num_bases"),
        ("compression_option=12,compression_factor=2,num_bases=5", "num_bases"),
    ],
)
def test_bad_hparams_are_value_errors_naming_them(text, name):
    with pytest.raises(ValueError, match=name):
        apply = compression_wrapper.get_apply_compression(_spec(text))
        apply.apply_compression(tf.Variable(tf.zeros(SHAPE)), scope="w")
    with pytest.raises(ValueError, match="compression_option"):
        registry.method_for_option(11)


# --- every update option in every mode ------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("update_option", [0, 1, 2, 3])
def test_update_options_eagerly(name, update_option, rng):
    a = rng.standard_normal(SHAPE).astype(np.float32)
    op = contract.eager_op(SPECS[name], update_option, a)
    fired = bool(op.update(0))
    fired = op.run_update_step(step_number=0) or fired
    if update_option == 3:
        assert not fired and float(op.alpha) == 1.0
        np.testing.assert_array_equal(op.get_weight().numpy(), a)
        return
    assert fired and float(op.alpha) == 0.0
    oracle = _oracle(name, [np.asarray(f) for f in op.factor_variables])
    np.testing.assert_allclose(op.get_weight().numpy(), oracle, rtol=1e-5, atol=1e-5)
    x = rng.standard_normal((3, SHAPE[1])).astype(np.float32)
    np.testing.assert_allclose(op.get_apply_matmul(x).numpy(), x @ oracle.T, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("jit", [False, True])
def test_tf_op_updates_in_tf_function_and_xla(name, jit, rng):
    a = rng.standard_normal(SHAPE).astype(np.float32)
    oracle, compressor = lambda f: _oracle(name, f), _compressor(SPECS[name])
    contract.check_tf_op_update_in_function(SPECS[name], a, oracle, compressor, rng, jit)


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("update_option", [0, 1, 2, 3])
def test_tf1_graph(name, update_option, rng):
    a = rng.standard_normal(SHAPE).astype(np.float32)
    oracle, compressor = lambda f: _oracle(name, f), _compressor(SPECS[name])
    contract.check_tf1_graph(SPECS[name], update_option, a, oracle, compressor, rng)


# --- Keras, strip, export, CLI ----------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(SPECS))
def test_keras_compress_strip_and_export(name, rng, tmp_path):
    model = contract.mlp(rng)
    spec = SPECS[name].replace("block_compression_factor=4", "block_compression_factor=8")
    spec = spec.replace("compression_factor=4,num_bases=3", "compression_factor=8,num_bases=1")
    compressed, stripped = contract.compress_and_strip(model, spec, layers=["hidden", "out"])
    x = rng.standard_normal((5, 24)).astype(np.float32)
    contract.check_deployed(model, compressed, stripped, x, tmp_path)


@pytest.mark.parametrize("method", [block_diagonal.METHOD, mixed_block.METHOD])
def test_ratio_hook_reaches_the_target(method):
    for shape in ((24, 16), (64, 32), (96, 96)):
        spec = method.spec_for_ratio(_spec(f"compression_option={method.option}"), shape, 4)
        form = method.make_compressor(spec).form(shape)
        assert form.dense_nbytes() >= 4 * form.nbytes(), (shape, form.label())


@pytest.mark.parametrize("name", ["block", "mixedblock"])
def test_cli_compress_with_the_method(name, rng, tmp_path, capsys):
    source, out = str(tmp_path / "in.keras"), str(tmp_path / "out.keras")
    contract.mlp(rng).save(source)
    assert cli.main(["compress", source, "--method", name, "--ratio", "4", "-o", out]) == 0
    printed = capsys.readouterr().out
    assert registry.method_named(name).form_class.kind in printed
    loaded = tf.keras.models.load_model(out, custom_objects=mk.custom_objects())
    assert mk.compression_ratio(loaded) > 2


@pytest.mark.parametrize("name", sorted(SPECS))
def test_stripped_model_converts_to_tflite_with_builtin_ops(name, rng):
    inputs = tf.keras.Input((24,))
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(16, name="hidden")(inputs))
    _, stripped = contract.compress_and_strip(model, SPECS[name])
    contract.check_tflite_builtins(stripped, rng.standard_normal((1, 24)).astype(np.float32))


@pytest.mark.parametrize("name", sorted(SPECS))
def test_fit_with_the_callback_trains_the_factors(name, rng):
    compressor = _compressor(SPECS[name])
    contract.check_fit_trains_the_factors(contract.mlp(rng), SPECS[name], compressor, rng)


def test_compress_model_raises_spec_errors_and_skips_shapes_that_do_not_fit(rng):
    model = contract.mlp(rng)
    with pytest.raises(ValueError, match="block_method"):
        mk.compress_model(model, f"{BLOCK},block_method=diag")
    with pytest.warns(mk.SkippedLayerWarning, match=r"block_compression_factor \(3\) must divide"):
        with pytest.raises(ValueError, match="no layer to compress"):
            mk.compress_model(model, "compression_option=10,block_compression_factor=3")
