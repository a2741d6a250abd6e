"""Input/output compression (option 9): the least-squares fit against NumPy oracles, the
products against the dense Kronecker-product oracle, exact sizes, bad hparams, every update
option in every mode (eager, tf.function, jit_compile, TF1 graph), Keras compress / fit /
strip / export / TFLite for Dense, EinsumDense, Conv2D and Embedding, and the CLI."""

import warnings

import numpy as np
import pytest
import tensorflow as tf

import method_contract as contract
import tf_matcomp.keras as mk
from conftest import run_in_mode
from tf_matcomp import cli, compression_wrapper, demo
from tf_matcomp.compressors import input_output, registry
from tf_matcomp.hparams import HParams

SHAPE = (24, 16)
INPUT = "input_block_size=8,input_compression_factor=4"
OUTPUT = "compress_output=True,output_block_size=8,output_compression_factor=2"
SPECS = {  # name -> spec of a SHAPE matrix
    "input": f"compression_option=9,{INPUT}",
    "output": f"compression_option=9,compress_input=False,{OUTPUT}",
    "both": f"compression_option=9,{INPUT},{OUTPUT}",
}


_spec = contract.parse


def _compressor(text):
    return compression_wrapper.make_compressor(_spec(text))


def _oracle(name, factors, shape=SHAPE):
    """Â = diag(B, …)·C·diag(D, …) in NumPy, the block diagonals as Kronecker products."""
    factors = [np.asarray(f, np.float64) for f in factors]
    b = factors.pop(0) if name != "output" else None
    c = factors.pop(0)
    d = factors.pop(0) if name != "input" else None
    left = np.eye(shape[0]) if b is None else np.kron(np.eye(shape[0] // b.shape[0]), b)
    right = np.eye(shape[1]) if d is None else np.kron(np.eye(shape[1] // d.shape[1]), d)
    return left @ c @ right


def _one_sided_error(a, block, keep):
    """The exact optimum of one side (input: row blocks of a): ‖A‖² minus the `keep` largest
    eigenvalues of Σ_k A_k·A_kᵀ, from eigvalsh."""
    blocks = a.reshape(a.shape[0] // block, block, a.shape[1])
    gram = sum(x @ x.T for x in blocks)
    return np.sum(a * a) - np.sum(np.linalg.eigvalsh(gram)[::-1][:keep])


# --- the fit against NumPy oracles --------------------------------------------------------------
def test_input_side_is_the_exact_least_squares_fit(rng):
    a = rng.standard_normal(SHAPE)
    b, c = _compressor(SPECS["input"]).static_matrix_compressor(a)
    assert b.shape == (8, 2) and c.shape == (6, 16) and b.dtype == c.dtype == np.float64
    np.testing.assert_allclose(b.T @ b, np.eye(2), atol=1e-12)  # orthonormal columns
    left = np.kron(np.eye(3), b)
    np.testing.assert_allclose(c, left.T @ a, atol=1e-12)  # C = P_inᵀ·A
    error = np.sum((a - _oracle("input", [b, c])) ** 2)
    assert error == pytest.approx(_one_sided_error(a, 8, 2), rel=1e-9)


def test_output_side_is_the_exact_least_squares_fit(rng):
    a = rng.standard_normal(SHAPE)
    c, d = _compressor(SPECS["output"]).static_matrix_compressor(a)
    assert c.shape == (24, 8) and d.shape == (4, 8)
    np.testing.assert_allclose(d @ d.T, np.eye(4), atol=1e-12)  # orthonormal rows
    np.testing.assert_allclose(c, a @ np.kron(np.eye(2), d).T, atol=1e-12)
    error = np.sum((a - _oracle("output", [c, d])) ** 2)
    assert error == pytest.approx(_one_sided_error(a.T, 8, 4), rel=1e-9)


def test_both_sides_lie_between_the_one_sided_bounds_and_the_passes_never_hurt(rng, monkeypatch):
    a = rng.standard_normal(SHAPE)
    compressor = _compressor(SPECS["both"])
    b, c, d = compressor.static_matrix_compressor(a)
    left, right = np.kron(np.eye(3), b), np.kron(np.eye(2), d)
    np.testing.assert_allclose(c, left.T @ a @ right.T, atol=1e-12)
    error = np.sum((a - _oracle("both", [b, c, d])) ** 2)
    assert error == pytest.approx(np.sum(a * a) - np.sum(c * c), rel=1e-9)
    e_in, e_out = _one_sided_error(a, 8, 2), _one_sided_error(a.T, 8, 4)
    # Constraining both sides cannot beat either alone; the HOSVD start is within their sum.
    assert max(e_in, e_out) <= error <= e_in + e_out
    monkeypatch.setattr(input_output, "ALTERNATING_PASSES", 0)
    start = np.sum((a - _oracle("both", compressor.static_matrix_compressor(a))) ** 2)
    assert error <= start * (1 + 1e-12)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_a_matrix_of_the_form_is_fitted_exactly(name, rng):
    exact = _oracle(name, [rng.standard_normal(s) for _, s, _ in _form(name).variables()])
    fitted = _compressor(SPECS[name]).static_matrix_compressor(exact)
    np.testing.assert_allclose(_oracle(name, fitted), exact, atol=1e-9)


def test_factor_one_keeps_a_exactly(rng):
    a = rng.standard_normal(SHAPE)
    text = "compression_option=9,input_block_size=8,compress_output=True,output_block_size=4"
    np.testing.assert_allclose(
        _oracle("both", _compressor(text).static_matrix_compressor(a)), a, atol=1e-12
    )


@pytest.mark.parametrize("name", sorted(SPECS))
def test_tf_path_matches_numpy_in_every_mode(name, mode, rng):
    a = rng.standard_normal(SHAPE).astype(np.float32)
    compressor = _compressor(SPECS[name])
    expected = _oracle(name, compressor.static_matrix_compressor(a))
    got = run_in_mode(mode, compressor.tpu_matrix_compressor, tf.constant(a))
    np.testing.assert_allclose(_oracle(name, got), expected, atol=1e-4)


def test_half_precision_weights_are_fitted_in_float32(rng):
    a = rng.standard_normal(SHAPE).astype(np.float32)
    compressor = _compressor(SPECS["both"])
    factors = compressor.tpu_matrix_compressor(tf.constant(a, tf.float16))
    assert all(f.dtype == tf.float32 for f in factors)
    expected = _oracle("both", compressor.static_matrix_compressor(a))
    np.testing.assert_allclose(_oracle("both", factors), expected, atol=1e-2)


# --- the form's products -----------------------------------------------------------------------
def _form(name, shape=SHAPE, dtype=tf.float32):
    return _compressor(SPECS[name]).form(shape, dtype)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_products_match_the_kronecker_oracle(name, rng):
    form = _form(name)
    assert form.factored_is_cheaper()
    factors = [
        tf.constant(rng.standard_normal(s).astype(np.float32)) for _, s, _ in form.variables()
    ]
    w = _oracle(name, factors)
    x = rng.standard_normal((2, 3, SHAPE[0])).astype(np.float32)
    xt = rng.standard_normal((4, SHAPE[1])).astype(np.float32)
    ids = np.array([[23, 0, 9], [8, 7, 16]])
    a = rng.standard_normal(SHAPE).astype(np.float32)
    tol = dict(rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(form.matrix(factors).numpy(), w, **tol)
    np.testing.assert_allclose(form.matmul(tf.constant(x), factors).numpy(), x @ w, **tol)
    np.testing.assert_allclose(form.matmul(tf.constant(x[0]), factors).numpy(), x[0] @ w, **tol)
    np.testing.assert_allclose(
        form.transposed_matmul(tf.constant(xt), factors).numpy(), xt @ w.T, **tol
    )
    np.testing.assert_allclose(form.gather_rows(ids, factors).numpy(), w[ids], **tol)
    np.testing.assert_allclose(
        form.blend(tf.constant(a), factors, 0.3).numpy(), 0.3 * a + 0.7 * w, **tol
    )
    jit = tf.function(lambda v: form.matmul(v, factors), jit_compile=True)
    np.testing.assert_allclose(jit(tf.constant(x)).numpy(), x @ w, **tol)


def test_products_through_w_hat_when_the_factors_cost_more(rng):
    # Factor 1 on both sides: B and D are square, so x·B·C·D costs more than x·Â.
    text = "compression_option=9,input_block_size=8,compress_output=True,output_block_size=8"
    form = _compressor(text).form(SHAPE)
    assert not form.factored_is_cheaper()
    factors = [
        tf.constant(rng.standard_normal(s).astype(np.float32)) for _, s, _ in form.variables()
    ]
    w = _oracle("both", factors)
    x, xt = rng.standard_normal((3, 24)), rng.standard_normal((3, 16))
    x, xt = x.astype(np.float32), xt.astype(np.float32)
    np.testing.assert_allclose(form.matmul(tf.constant(x), factors).numpy(), x @ w, atol=1e-4)
    np.testing.assert_allclose(
        form.transposed_matmul(tf.constant(xt), factors).numpy(), xt @ w.T, atol=1e-4
    )


def test_one_block_on_one_side_is_a_pair_of_dense_factors(rng):
    one_input = _compressor("compression_option=9,input_block_size=24,input_compression_factor=4")
    form = one_input.form(SHAPE)
    factors = [
        tf.constant(rng.standard_normal(s).astype(np.float32)) for _, s, _ in form.variables()
    ]
    b, c = form.low_rank_factors(factors)
    np.testing.assert_allclose((b @ c).numpy(), form.matrix(factors).numpy(), atol=1e-5)
    one_output = _compressor(
        "compression_option=9,compress_input=False,compress_output=True,output_block_size=16,"
        "output_compression_factor=4"
    ).form(SHAPE)
    factors = [
        tf.constant(rng.standard_normal(s).astype(np.float32)) for _, s, _ in one_output.variables()
    ]
    c, d = one_output.low_rank_factors(factors)
    np.testing.assert_allclose((c @ d).numpy(), one_output.matrix(factors).numpy(), atol=1e-5)
    assert _form("both").low_rank_factors([None] * 3) is None


# --- sizes ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16, tf.float32, tf.float64])
def test_sizes_and_ratio_are_exact(dtype):
    values = {"input": 8 * 2 + 6 * 16, "output": 24 * 8 + 4 * 8, "both": 8 * 2 + 6 * 8 + 4 * 8}
    for name, count in values.items():
        form = _form(name, dtype=dtype)
        assert form.nbytes() == count * dtype.size
        apply = compression_wrapper.get_apply_compression(_spec(SPECS[name]))
        apply.apply_compression(tf.Variable(tf.zeros(SHAPE, dtype)), scope="w")
        op = apply.get_last_compression_op()
        assert op.compressed_bits == 8 * count * dtype.size
        assert op.uncompressed_bits == 8 * SHAPE[0] * SHAPE[1] * dtype.size
        assert op.compression_ratio == pytest.approx(SHAPE[0] * SHAPE[1] / count)
        assert apply.compressed_size == count and apply.uncompressed_size == 384


def test_config_round_trip_and_labels():
    for name, label in (("input", "in8/4"), ("output", "out8/2"), ("both", "in8/4+out8/2")):
        form = _form(name, dtype=tf.float64)
        again = registry.form_from_config(form.get_config())
        assert again.get_config() == form.get_config() and again.variables() == form.variables()
        assert form.label() == label


# --- bad hparams ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, message",
    [
        (
            "input_block_size=5,input_compression_factor=1",
            r"input_block_size \(5\) must divide the weight's rows \(24\)",
        ),
        (
            "input_block_size=8,input_compression_factor=3",
            r"input_compression_factor \(3\) must divide input_block_size \(8\)",
        ),
        (
            "input_block_size=8,input_compression_factor=0",
            "input_compression_factor must be a positive int",
        ),
        ("input_block_size=-8", "input_block_size must be a positive int"),
        ("compress_input=False", "needs compress_input or compress_output"),
        (
            "compress_input=False,input_compression_factor=2",
            r"input_compression_factor \(2\) is set but compress_input is False",
        ),
        ("output_block_size=4", r"output_block_size \(4\) is set but compress_output is False"),
        (
            "compress_output=True,output_block_size=6",
            r"output_block_size \(6\) must divide the weight's columns \(16\)",
        ),
        (
            "compress_output=True,output_block_size=8,output_compression_factor=16",
            r"output_compression_factor \(16\) must divide",
        ),
    ],
)
def test_bad_hparams_are_value_errors_naming_them(text, message):
    with pytest.raises(ValueError, match=message):
        apply = compression_wrapper.get_apply_compression(_spec(f"compression_option=9,{text}"))
        apply.apply_compression(tf.Variable(tf.zeros(SHAPE)), scope="w")


def test_a_flag_that_is_not_a_bool_is_refused():
    values = input_output.InputOutputCompressor.get_default_hparams().values()
    values["compress_output"] = 1
    with pytest.raises(ValueError, match="compress_output must be True or False, got 1"):
        input_output.side_settings(HParams(**values))


# --- every update option in every mode --------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("update_option", [0, 1, 2, 3])
def test_update_options_eagerly(name, update_option, rng):
    a = rng.standard_normal(SHAPE).astype(np.float32)
    op = contract.eager_op(SPECS[name], update_option, a)
    present = {"b_matrix_tfvar": name != "output", "d_matrix_tfvar": name != "input"}
    for attribute, expected in present.items():
        assert (getattr(op, attribute) is not None) == expected
    assert op.c_matrix_tfvar is op.factor_variables[1 if name != "output" else 0]
    fired = bool(op.update(0))
    fired = op.run_update_step(step_number=0) or fired
    if update_option == 3:
        assert not fired and float(op.alpha) == 1.0
        np.testing.assert_array_equal(op.get_weight().numpy(), a)
        return
    assert fired and float(op.alpha) == 0.0
    oracle = _oracle(name, op.factor_variables)
    reference = _oracle(name, _compressor(SPECS[name]).static_matrix_compressor(a))
    np.testing.assert_allclose(oracle, reference, atol=1e-4)
    np.testing.assert_allclose(op.get_weight().numpy(), oracle, rtol=1e-5, atol=1e-5)
    x = rng.standard_normal((3, SHAPE[1])).astype(np.float32)
    np.testing.assert_allclose(op.get_apply_matmul(x).numpy(), x @ oracle.T, rtol=1e-4, atol=1e-4)
    ids = np.array([0, 23, 5])
    np.testing.assert_allclose(
        op.get_apply_embedding_lookup(ids).numpy(), oracle[ids], rtol=1e-4, atol=1e-4
    )


def test_the_alpha_schedule_blends_a_into_the_fit(rng):
    a = rng.standard_normal(SHAPE).astype(np.float32)
    schedule = "begin_compression_step=0,compression_frequency=1,alpha_decrement_value=0.25"
    apply = compression_wrapper.get_apply_compression(_spec(f"{SPECS['both']},{schedule}"))
    apply.apply_compression(tf.Variable(a), scope="w")
    op = apply.get_last_compression_op()
    np.testing.assert_array_equal(op.get_weight().numpy(), a)  # alpha 1 before the first firing
    op.update(0)
    w_hat = _oracle("both", _compressor(SPECS["both"]).static_matrix_compressor(a))
    np.testing.assert_allclose(op.get_weight().numpy(), 0.75 * a + 0.25 * w_hat, atol=1e-4)
    assert float(op.reconstruction_error()) == pytest.approx(
        np.linalg.norm(a - w_hat) / np.linalg.norm(a), rel=1e-4
    )


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


# --- Keras, strip, export, CLI ------------------------------------------------------------------------
# Specs that shrink both of contract.mlp's kernels (24x16 and 16x8).
KERAS_SPECS = {
    "input": "compression_option=9,input_block_size=8,input_compression_factor=4",
    "output": "compression_option=9,compress_input=False,compress_output=True,"
    "output_block_size=4,output_compression_factor=2",
    "both": "compression_option=9,input_block_size=8,input_compression_factor=4,"
    "compress_output=True,output_block_size=8,output_compression_factor=2",
}


@pytest.mark.parametrize("name", sorted(KERAS_SPECS))
def test_keras_compress_strip_and_export(name, rng, tmp_path):
    model = contract.mlp(rng)
    compressed, stripped = contract.compress_and_strip(model, KERAS_SPECS[name])
    assert len(mk.compressed_layers(compressed)) == 2
    x = rng.standard_normal((5, 24)).astype(np.float32)
    contract.check_deployed(model, compressed, stripped, x, tmp_path)
    contract.check_tflite_builtins(stripped, x[:1])


def test_stripped_layers_store_only_the_factors(rng):
    _, stripped = contract.compress_and_strip(contract.mlp(rng), KERAS_SPECS["both"])
    hidden = stripped.get_layer("hidden")
    kernel_shapes = sorted(tuple(w.shape) for w in hidden.weights if len(w.shape) == 2)
    assert kernel_shapes == [(4, 8), (6, 8), (8, 2)]  # D, C, B: no 24x16 kernel


def test_one_input_block_strips_to_stock_dense_layers(rng):
    inputs = tf.keras.Input((24,))
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(16, name="hidden")(inputs))
    spec = "compression_option=9,input_block_size=24,input_compression_factor=4"
    compressed, stripped = contract.compress_and_strip(model, spec)
    pair = stripped.get_layer("hidden")
    assert isinstance(pair, tf.keras.Sequential)
    assert [type(layer) for layer in pair.layers] == [tf.keras.layers.Dense] * 2
    x = rng.standard_normal((3, 24)).astype(np.float32)
    np.testing.assert_allclose(stripped(x).numpy(), compressed(x).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", sorted(KERAS_SPECS))
def test_fit_with_the_callback_trains_the_factors(name, rng):
    compressor = _compressor(KERAS_SPECS[name])
    contract.check_fit_trains_the_factors(contract.mlp(rng), KERAS_SPECS[name], compressor, rng)


def _kinds_model():
    """Embedding 32x8 → Conv2D (3×1 kernel, 8 → 16 channels: kernel view 24x16) → EinsumDense
    16 → 4×8 (kernel view 16x32)."""
    tokens = tf.keras.Input((6,), dtype="int32")
    h = tf.keras.layers.Embedding(32, 8, name="embed")(tokens)  # [b, 6, 8]
    h = tf.keras.layers.Reshape((6, 1, 8))(h)
    h = tf.keras.layers.Conv2D(16, (3, 1), padding="same", name="conv")(h)  # kernel view 24x16
    h = tf.keras.layers.Reshape((6, 16))(h)
    out = tf.keras.layers.EinsumDense("abc,cde->abde", (6, 4, 8), name="einsum")(h)
    return tf.keras.Model(tokens, out)


def test_einsum_conv_and_embedding_kinds_compress_strip_and_match(rng):
    model = _kinds_model()
    spec = (
        "compression_option=9,input_block_size=8,input_compression_factor=2,"
        f"compress_output=True,output_block_size=8,output_compression_factor=2,{contract.ONE_SHOT}"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", mk.LayerGrowthWarning)
        compressed = mk.compress_model(model, spec)
    names = sorted(layer.name for layer in mk.compressed_layers(compressed))
    assert names == ["conv", "einsum", "embed"]
    x = rng.integers(0, 32, (3, 6)).astype(np.int32)
    np.testing.assert_allclose(compressed(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-5)
    for layer in mk.compressed_layers(compressed):
        layer.run_alpha_update(0)
        op = layer.compression.op
        w_hat = _oracle("both", op.factor_variables, (op.form.rows, op.form.cols))
        np.testing.assert_allclose(op.get_weight().numpy(), w_hat, atol=1e-5)
    stripped = mk.strip_compression(compressed)
    assert not mk.compressed_layers(stripped)
    np.testing.assert_allclose(stripped(x).numpy(), compressed(x).numpy(), rtol=1e-4, atol=1e-4)
    assert mk.model_size(stripped).bytes < mk.model_size(model).bytes


def test_compress_model_raises_spec_errors_and_skips_shapes_that_do_not_fit(rng):
    model = contract.mlp(rng)
    with pytest.raises(ValueError, match="needs compress_input or compress_output"):
        mk.compress_model(model, "compression_option=9,compress_input=False")
    # 24 rows take blocks of 12, the 16-row "out" kernel does not: skipped, with the reason.
    with pytest.warns(mk.SkippedLayerWarning, match=r"input_block_size \(12\) must divide"):
        compressed = mk.compress_model(
            model, "compression_option=9,input_block_size=12,input_compression_factor=4"
        )
    assert [layer.name for layer in mk.compressed_layers(compressed)] == ["hidden"]


@pytest.mark.parametrize(
    "sides", ["", "compress_output=True", "compress_input=False,compress_output=True"]
)
def test_ratio_hook_reaches_the_target(sides):
    method = registry.method_named("inout")
    for shape in ((24, 16), (64, 32), (96, 96), (256, 10)):
        base = _spec(f"compression_option=9{',' + sides if sides else ''}")
        spec = method.spec_for_ratio(base, shape, 4)
        form = method.make_compressor(spec).form(shape)
        assert form.dense_nbytes() >= 4 * form.nbytes(), (shape, form.label())
        assert (form.sides["input"] is not None) == spec.compress_input
        assert (form.sides["output"] is not None) == spec.compress_output


def test_cli_compress_with_the_method(rng, tmp_path, capsys):
    source, out = str(tmp_path / "in.keras"), str(tmp_path / "out.keras")
    contract.mlp(rng).save(source)
    assert cli.main(["compress", source, "--method", "inout", "--ratio", "4", "-o", out]) == 0
    assert "input_output" in capsys.readouterr().out
    loaded = tf.keras.models.load_model(out, custom_objects=mk.custom_objects())
    assert mk.compression_ratio(loaded) > 2


def test_the_demo_rows_shrink_both_compressed_layers_of_the_demo_mlp():
    rows = [s for s in demo.settings(False, 10, 12) if s.method == "input/output"]
    assert [row.label for row in rows] == ["in 32/4", "in+out 32/4", "in 64/8"]
    model = demo.build_mlp(64, 10, seed=0)
    for row in rows:
        with warnings.catch_warnings():
            warnings.simplefilter("error", mk.LayerGrowthWarning)
            compressed = mk.compress_model(model, row.spec, layers=demo.LAYERS_TO_COMPRESS)
        assert len(mk.compressed_layers(compressed)) == 2
