"""The method registry and the compressed forms: every option, every form product against the
dense Â, sizes for every dtype, config round trips, and the package without `_core`."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from tf_matcomp import cli, compression_op, compression_wrapper
from tf_matcomp.compressors import dictionary_learning, registry
from tf_matcomp.compressors.form import CompressedForm

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPE = (24, 16)
# Specs under which each method compresses a SHAPE matrix to something smaller than dense.
SPECS = {
    "lowrank": "rank=400",
    "simhash": "rank=400",
    "dictionary": "rank=400",
    "kmeans": "rank=4,block_size=2",
    "inout": "input_block_size=8,input_compression_factor=4,compress_output=True,"
    "output_block_size=8,output_compression_factor=2",
    "pruned_kmeans": "rank=4,block_size=2,block_width=2,target_sparsity=0.5",
    "block": "block_compression_factor=4",
    "mixedblock": "compression_factor=4,num_bases=2",
}


def _spec(method, extra=""):
    text = f"compression_option={method.option},{SPECS[method.name]}"
    return compression_op.CompressionOp.get_default_hparams().parse(
        f"{text},{extra}" if extra else text
    )


def _compressed(method, rng):
    a = rng.standard_normal(SHAPE).astype(np.float32)
    compressor = compression_wrapper.make_compressor(_spec(method))
    factors = compressor.static_matrix_compressor(a)
    return a, compressor, factors


def _dense_oracle(method, compressor, factors):
    """Â rebuilt in NumPy from the factors, independently of the forms."""
    if method.name == "lowrank":
        b, c = factors
        return b @ c
    if method.name == "kmeans":
        codebook, codes = factors
        return codebook[codes.astype(np.int64)].reshape(SHAPE)
    if method.name == "pruned_kmeans":
        codebook, codes = factors
        with_zero = np.concatenate([codebook, np.zeros((1, codebook.shape[1]), codebook.dtype)])
        return with_zero[codes.astype(np.int64)].reshape(SHAPE)
    if method.name == "dictionary":
        indices, values, dictionary = factors
        return dictionary_learning.np_dense_codes(indices, values, dictionary.shape[0]) @ dictionary
    if method.name == "block":
        (blocks,) = factors
        dense = np.zeros(SHAPE, blocks.dtype)
        for i, block in enumerate(blocks):
            dense[i * block.shape[0] : (i + 1) * block.shape[0], i * block.shape[1] :][
                :, : block.shape[1]
            ] = block
        return dense
    if method.name == "inout":
        b, c, d = factors
        return np.kron(np.eye(SHAPE[0] // 8), b) @ c @ np.kron(np.eye(SHAPE[1] // 8), d)
    if method.name == "mixedblock":
        bases, coefficients = factors
        return np.block([[np.tensordot(mix, bases, axes=1) for mix in row] for row in coefficients])
    return compressor.np_reconstruct(factors, SHAPE)


def _blend_oracle(method, a, factors, oracle, alpha):
    """alpha·A + (1 − alpha)·Â; pruning + k-means blends the pruned A (mask implied by codes)."""
    if method.name == "pruned_kmeans":
        codebook, codes = factors
        kept = np.repeat(codes.astype(np.int64) != codebook.shape[0], codebook.shape[1], 1)
        a = a * kept
    return alpha * a + (1 - alpha) * oracle


METHODS = sorted(registry.METHODS.values(), key=lambda m: m.option)
METHOD_IDS = [m.name for m in METHODS]


def test_every_option_maps_to_its_method_and_apply_class():
    assert registry.SUPPORTED_COMPRESSION_OPTIONS == (0, 1, 2, 3, 4, 8, 9, 10, 12)
    assert registry.method_for_option(0) is registry.method_for_option(1)
    for option in registry.SUPPORTED_COMPRESSION_OPTIONS:
        method = registry.method_for_option(option)
        spec = compression_op.CompressionOp.get_default_hparams().parse(
            f"compression_option={option},rank=200"
        )
        apply = compression_wrapper.get_apply_compression(spec)
        assert type(apply.get_matrix_compressor()) is method.compressor_class
    names = {
        2: "SimhashApplyCompression",
        3: "DLApplyCompression",
        4: "SimhashApplyCompression",
        1: "ApplyCompression",
    }
    for option, name in names.items():
        spec = compression_op.CompressionOp.get_default_hparams().parse(
            f"compression_option={option},rank=200"
        )
        assert type(compression_wrapper.get_apply_compression(spec)).__name__ == name


@pytest.mark.parametrize("option", [5, 11, -1, "1", None, 2.5])
def test_unknown_options_name_the_hparam_and_list_the_known_ones(option):
    with pytest.raises(
        ValueError, match=r"compression_option must be one of \(0, 1, 2, 3, 4, 8, 9, 10, 12\)"
    ):
        registry.method_for_option(option)


def test_names_are_unique_and_the_cli_offers_exactly_them():
    assert len({m.form_class.kind for m in METHODS}) == len(METHODS)
    assert cli._parser()._subparsers._group_actions[0].choices["compress"]._option_string_actions[
        "--method"
    ].choices == sorted(registry.METHODS)
    with pytest.raises(ValueError, match="unknown compression method 'svd'"):
        registry.method_named("svd")


@pytest.mark.parametrize("method", METHODS, ids=METHOD_IDS)
@pytest.mark.parametrize("dtype", [tf.float16, tf.float32, tf.float64])
def test_form_variables_are_the_factor_specs_and_sizes_follow_the_dtype(method, dtype):
    compressor = compression_wrapper.make_compressor(_spec(method))
    form = compressor.form(SHAPE, dtype)
    specs = compressor.factor_specs(SHAPE, dtype)
    assert [(tuple(s.shape), s.dtype.name) for s in specs] == [
        (tuple(shape), name) for _, shape, name in form.variables()
    ]
    assert form.nbytes() * 8 == sum(s.bits for s in specs)
    assert form.dense_nbytes() == SHAPE[0] * SHAPE[1] * dtype.size
    float_bytes = (
        sum(
            int(np.prod(shape))
            for _, shape, name in form.variables()
            if tf.as_dtype(name).is_floating
        )
        * dtype.size
    )
    other_bytes = sum(
        int(np.prod(shape)) * tf.as_dtype(name).size
        for _, shape, name in form.variables()
        if not tf.as_dtype(name).is_floating
    )
    assert form.nbytes() == float_bytes + other_bytes
    assert form.nbytes() < form.dense_nbytes()


@pytest.mark.parametrize("method", METHODS, ids=METHOD_IDS)
@pytest.mark.parametrize("implementation", ["auto", "composite"])
def test_form_products_match_the_dense_oracle(method, implementation, rng):
    a, compressor, factors = _compressed(method, rng)
    oracle = _dense_oracle(method, compressor, factors)
    form = registry.form_from_config(compressor.form(SHAPE).get_config(), implementation)
    arrays = [tf.constant(f) for f in factors]
    x = rng.standard_normal((3, SHAPE[0])).astype(np.float32)
    x3 = rng.standard_normal((2, 3, SHAPE[0])).astype(np.float32)
    xt = rng.standard_normal((3, SHAPE[1])).astype(np.float32)
    ids = np.array([5, 0, 5, 23])
    tol = dict(rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(form.matrix(arrays).numpy(), oracle, **tol)
    np.testing.assert_allclose(form.matmul(tf.constant(x), arrays).numpy(), x @ oracle, **tol)
    np.testing.assert_allclose(form.matmul(tf.constant(x3), arrays).numpy(), x3 @ oracle, **tol)
    np.testing.assert_allclose(
        form.transposed_matmul(tf.constant(xt), arrays).numpy(), xt @ oracle.T, **tol
    )
    np.testing.assert_allclose(form.gather_rows(ids, arrays).numpy(), oracle[ids], **tol)
    np.testing.assert_allclose(
        form.blend(tf.constant(a), arrays, 0.25).numpy(),
        _blend_oracle(method, a, factors, oracle, 0.25),
        **tol,
    )
    np.testing.assert_allclose(compressor.reconstruct(arrays, SHAPE).numpy(), oracle, **tol)


@pytest.mark.parametrize("method", METHODS, ids=METHOD_IDS)
def test_compression_op_products_use_the_form(method, rng):
    a, _, _ = _compressed(method, rng)
    variable = tf.Variable(a)
    spec = _spec(
        method, "begin_compression_step=0,compression_frequency=1,alpha_decrement_value=0.5"
    )
    apply = compression_wrapper.get_apply_compression(spec)
    apply.apply_compression(variable, "w")
    op = apply.get_last_compression_op()
    op.update(0)  # factors computed, alpha 0.5
    w = op.get_weight().numpy()
    w_hat = op.get_compressed_weight().numpy()
    np.testing.assert_allclose(w, 0.5 * a + 0.5 * w_hat, rtol=1e-5, atol=1e-5)
    xt = rng.standard_normal((4, SHAPE[1])).astype(np.float32)
    np.testing.assert_allclose(op.get_apply_matmul(xt).numpy(), xt @ w.T, rtol=1e-4, atol=1e-4)
    ids = np.array([3, 1, 3])
    np.testing.assert_allclose(
        op.get_apply_embedding_lookup(ids).numpy(), w[ids], rtol=1e-5, atol=1e-5
    )
    # b_matrix_tfvar / c_matrix_tfvar name the factors the method's entry says.
    names = [name for name, _, _ in op.form.variables()]
    for attribute, factor in method.factor_attributes.items():
        index = names.index(factor) if isinstance(factor, str) else factor
        assert getattr(op, attribute) is op.factor_variables[index]


@pytest.mark.parametrize("method", METHODS, ids=METHOD_IDS)
def test_form_config_round_trips_and_old_configs_default_to_float32(method):
    compressor = compression_wrapper.make_compressor(_spec(method))
    form = compressor.form(SHAPE, tf.float64)
    again = registry.form_from_config(form.get_config())
    assert type(again) is method.form_class and again.get_config() == form.get_config()
    legacy = {k: v for k, v in form.get_config().items() if k != "dtype"}
    assert registry.form_from_config(legacy).dtype == "float32"


def test_a_form_subclass_must_say_how_it_rebuilds_the_matrix():
    form = CompressedForm(2, 3)
    with pytest.raises(NotImplementedError):
        form.matrix([])


def test_import_and_numpy_paths_work_without_the_core_module(tmp_path):
    script = tmp_path / "no_core.py"
    script.write_text(
        textwrap.dedent("""
        import sys, warnings
        import importlib.abc

        class BlockCore(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name == "tf_matcomp._core":
                    raise ImportError("blocked for the test")
                return None

        sys.meta_path.insert(0, BlockCore())
        import numpy as np
        import tensorflow as tf
        import tf_matcomp
        from tf_matcomp.compressors.simhash import SimhashMatrixCompressor
        compressor = SimhashMatrixCompressor()
        a = np.random.default_rng(0).standard_normal((20, 12)).astype(np.float32)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            signs, scales = compressor.static_matrix_compressor(a)
        messages = [str(w.message) for w in caught]
        assert any("_core failed to import" in m and "blocked for the test" in m
                   for m in messages), messages
        tf_signs, tf_scales = compressor.tpu_matrix_compressor(tf.constant(a))
        assert (signs == tf_signs.numpy()).all()
        assert np.allclose(scales, tf_scales.numpy())
        print("ok")
    """)
    )
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")
