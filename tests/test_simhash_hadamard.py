"""Simhash with the structured projection (projection="hadamard"): R against a NumPy oracle
written from cc/core/hadamard.h, compression and decompression against dense float64 products
with that R, native vs composite vs _core, every execution mode, the compressor hparam, the
TFLite-builtin export form, bad names, and the error within 3% of the Gaussian projection's."""

import numpy as np
import pytest
import tensorflow as tf

from conftest import run_in_mode
from simhash_oracle import GOLDEN, mix64, oracle_scales, unpack
from tf_matcomp import _core_loader, ops
from tf_matcomp.compressors import simhash as simhash_compressor
from tf_matcomp.compressors import simhash_builtin_ops
from tf_matcomp.compressors.registry import method_for_option
from tf_matcomp.compression_op import spec as spec_lib


def oracle_projection(num_rows, num_bits, seed, dtype=np.float64):
    """R[i, qL + t] = σ_q(i)·(−1)^popcount(i & t), σ_q(i) = −1 iff the top bit of
    mix(key + (i·2³² + q)·G) is set, L the smallest power of two >= num_rows."""
    block = 1 << max(num_rows - 1, 0).bit_length()
    rows = np.arange(num_rows, dtype=np.uint64)[:, None]
    cols = np.arange(num_bits, dtype=np.uint64)[None, :]
    with np.errstate(over="ignore"):
        key = mix64(np.array([seed], np.uint64) + GOLDEN)
        h = mix64(key + ((rows << np.uint64(32)) | (cols // np.uint64(block))) * GOLDEN)
    negative = (h >> np.uint64(63)).astype(np.int64)
    parity = np.vectorize(lambda x: bin(int(x)).count("1") % 2)(rows & (cols % np.uint64(block)))
    return (1 - 2 * (negative ^ parity)).astype(dtype)


def compress(a, num_bits, implementation, seed=5, scale="least_squares"):
    signs, scales = ops.simhash_compress(
        a, num_bits, seed=seed, scale=scale, implementation=implementation, projection="hadamard"
    )
    return signs.numpy(), scales.numpy()


def relative_error(a, num_bits, projection, seed=3):
    signs, scales = ops.simhash_compress(a, num_bits, seed=seed, projection=projection)
    approx = ops.simhash_decompress(signs, scales, a.shape[0], seed=seed, projection=projection)
    return np.linalg.norm(approx.numpy() - a) / np.linalg.norm(a)


# (m, n, num_bits): m a power of two and not, one block and several (num_bits > L), one row
SHAPES = [(1, 1, 1), (1, 9, 3), (9, 5, 3), (40, 17, 64), (64, 130, 16), (33, 8, 200), (8, 20, 8)]


# ---------------------------------------------------------------- the projection
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows,bits", [(1, 5), (37, 70), (64, 64), (5, 20)])
def test_projection_bit_exact_everywhere(implementation, dtype, rows, bits):
    expected = oracle_projection(rows, bits, 11, dtype)
    for mode in ("eager", "jit") if implementation == "composite" else ("eager",):
        got = run_in_mode(
            mode,
            lambda: ops.simhash_projection(
                rows, bits, 11, dtype, implementation=implementation, projection="hadamard"
            ),
        )
        np.testing.assert_array_equal(got.numpy(), expected)


def test_projection_columns_of_a_block_are_orthogonal_for_power_of_two_rows():
    r = oracle_projection(64, 64, 2)
    np.testing.assert_array_equal(r.T @ r, 64 * np.eye(64))
    assert abs(r.mean()) < 0.05 and np.all(np.abs(r) == 1)


def test_core_projection_is_the_kernels():
    core = _core_loader.core_or_warn("test")
    for rows, bits in ((37, 70), (3, 19)):
        np.testing.assert_array_equal(
            core.simhash_projection(rows, bits, seed=4, dtype=np.float64, projection="hadamard"),
            oracle_projection(rows, bits, 4),
        )


# ---------------------------------------------------------------- compression
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", ["least_squares", "norm"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_compress_matches_oracle(implementation, shape, scale, dtype, rng):
    m, n, num_bits = shape
    a = rng.standard_normal((m, n)).astype(dtype)
    signs, scales = compress(a, num_bits, implementation, scale=scale)
    assert signs.dtype == np.uint8 and signs.shape == (num_bits, (n + 7) // 8)
    assert scales.dtype == dtype and scales.shape == (n,)
    r = oracle_projection(m, num_bits, 5)
    projected = r.T @ a.astype(np.float64)
    expected = unpack(np.packbits(projected >= 0, axis=1, bitorder="little"), n)
    clear = np.abs(projected) > 1e-4 * (np.abs(r).T @ np.abs(a))  # away from rounding noise
    s = unpack(signs, n)
    np.testing.assert_array_equal(s[clear], expected[clear])
    assert np.all(np.unpackbits(signs, axis=1, bitorder="little")[:, n:] == 0)  # padding
    tolerance = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(scales, oracle_scales(a, r, s, scale), rtol=tolerance, atol=1e-30)


def test_core_is_bit_identical_to_the_kernel_whatever_the_threads(rng):
    core = _core_loader.core_or_warn("test")
    a = rng.standard_normal((300, 200)).astype(np.float32)
    signs, scales = compress(a, 257, "native", seed=8)
    for threads in (1, 2, 3):
        core_signs, core_scales = core.simhash_compress(
            a, 257, seed=8, projection="hadamard", num_threads=threads
        )
        np.testing.assert_array_equal(core_signs, signs)
        np.testing.assert_array_equal(core_scales.view(np.uint32), scales.view(np.uint32))
        np.testing.assert_array_equal(
            core.simhash_decompress(
                signs, scales, 300, seed=8, projection="hadamard", num_threads=threads
            ),
            ops.simhash_decompress(
                signs, scales, 300, seed=8, implementation="native", projection="hadamard"
            ).numpy(),
        )


def test_native_and_composite_agree(rng):
    a = rng.standard_normal((500, 300)).astype(np.float32)
    native, native_scales = compress(a, 129, "native")
    composite, composite_scales = compress(a, 129, "composite")
    differ = unpack(native, 300) != unpack(composite, 300)
    assert differ.mean() < 1e-3
    same = ~differ.any(0)
    np.testing.assert_allclose(native_scales[same], composite_scales[same], rtol=1e-5)


# ---------------------------------------------------------------- decompression
@pytest.mark.parametrize("mode", ["eager", "function", "jit"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,n,num_bits", [(45, 21, 50), (16, 9, 40)])
def test_decompress_round_trip(implementation, mode, dtype, m, n, num_bits, rng):
    if mode == "jit" and implementation == "native":
        implementation = "auto"  # XLA cannot compile the custom op: `auto` must fall back
    a = rng.standard_normal((m, n)).astype(dtype)
    signs, scales = run_in_mode(
        mode,
        lambda a: ops.simhash_compress(
            a, num_bits, seed=9, implementation=implementation, projection="hadamard"
        ),
        a,
    )
    approx = run_in_mode(
        mode,
        lambda s, d: ops.simhash_decompress(
            s, d, m, seed=9, implementation=implementation, projection="hadamard"
        ),
        signs,
        scales,
    )
    expected = oracle_projection(m, num_bits, 9) @ (unpack(signs.numpy(), n) * scales.numpy())
    atol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(approx.numpy(), expected, rtol=0, atol=atol)
    assert np.linalg.norm(approx.numpy() - a) < np.linalg.norm(a)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,n", [(2048, 2051), (2050, 2048)])
def test_large_decompress_matches_the_definition(dtype, m, n, rng):
    """Outputs of >= 16 MiB are written with non-temporal stores where rows are aligned (n = 2048)
    and plainly where not (n = 2051): every element still equals R·S·diag(D)."""
    num_bits = 20
    signs = rng.integers(0, 256, (num_bits, -(-n // 8))).astype(np.uint8)
    scales = rng.standard_normal(n).astype(dtype)
    got = ops.simhash_decompress(signs, scales, m, seed=3, projection="hadamard")
    expected = oracle_projection(m, num_bits, 3) @ (unpack(signs, n) * scales)
    atol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=atol * num_bits)


@pytest.mark.parametrize("mode", ["eager", "function"])
def test_gradient_with_respect_to_scales(implementation, mode, rng):
    m, n, num_bits = 24, 10, 40
    signs, scales = compress(rng.standard_normal((m, n)), num_bits, "native", seed=4)
    upstream = rng.standard_normal((m, n))

    def loss_gradient(scales):
        with tf.GradientTape() as tape:
            tape.watch(scales)
            out = ops.simhash_decompress(
                signs, scales, m, seed=4, implementation=implementation, projection="hadamard"
            )
            loss = tf.reduce_sum(out * upstream)
        return tape.gradient(loss, scales)

    got = run_in_mode(mode, loss_gradient, tf.constant(scales))
    rs = oracle_projection(m, num_bits, 4) @ unpack(signs, n)
    np.testing.assert_allclose(got.numpy(), np.sum(upstream * rs, axis=0), rtol=1e-10)


# ---------------------------------------------------------------- quality
def low_rank_plus_noise(rng, size, rank=32, noise=0.1):
    low_rank = rng.standard_normal((size, rank)) @ rng.standard_normal((rank, size))
    return low_rank / np.sqrt(rank) + noise * rng.standard_normal((size, size))


@pytest.mark.parametrize("make", ["gaussian", "low_rank_plus_noise"])
@pytest.mark.parametrize("size,num_bits", [(512, 128), (512, 512), (384, 97)])
def test_error_within_three_percent_of_the_gaussian_projection(make, size, num_bits, rng):
    if make == "gaussian":
        a = rng.standard_normal((size, size))
    else:
        a = low_rank_plus_noise(rng, size)
    a = a.astype(np.float32)
    gaussian = relative_error(a, num_bits, "gaussian")
    hadamard = relative_error(a, num_bits, "hadamard")
    assert hadamard <= 1.03 * gaussian, (hadamard, gaussian)
    assert 0.3 < hadamard < 1.0


# ---------------------------------------------------------------- compressor and export form
def test_compressor_hparam_flows_from_the_op_spec(rng):
    op_spec = spec_lib.default_op_hparams().parse(
        "compression_option=2,rank=400,projection=hadamard"
    )
    compressor = method_for_option(2).make_compressor(op_spec)
    a = rng.standard_normal((64, 48)).astype(np.float32)
    signs, scales = compressor.static_matrix_compressor(a)
    tf_signs, tf_scales = compressor.tpu_matrix_compressor(tf.constant(a))
    np.testing.assert_array_equal(signs, tf_signs.numpy())
    np.testing.assert_array_equal(scales, tf_scales.numpy())
    expected_signs, _ = compress(a, compressor.num_bits(a.shape), "native", seed=compressor.seed)
    np.testing.assert_array_equal(signs, expected_signs)
    form = compressor.form(a.shape)
    assert form.projection == "hadamard" and form.get_config()["projection"] == "hadamard"
    np.testing.assert_allclose(
        form.matrix([signs, scales]).numpy(), compressor.np_reconstruct([signs, scales], a.shape)
    )


def test_default_projection_is_gaussian():
    compressor = method_for_option(2).make_compressor(spec_lib.default_op_hparams())
    assert compressor.form((8, 8)).projection == "gaussian"


@pytest.mark.parametrize("rows,bits", [(1, 4), (37, 70), (64, 64), (5, 20)])
def test_builtin_ops_export_form_regenerates_the_same_r(rows, bits):
    got = simhash_builtin_ops.hadamard_projection(
        tf.range(rows), tf.range(bits), 11, tf.float32, rows
    )
    np.testing.assert_array_equal(got.numpy(), oracle_projection(rows, bits, 11, np.float32))


def test_composite_form_products_match_the_dense_matrix(rng):
    m, n, bits = 40, 24, 9  # narrower than dense: products go through R and S
    a = rng.standard_normal((m, n)).astype(np.float32)
    signs, scales = compress(a, bits, "native")
    form = simhash_compressor.SimhashForm(
        m, n, bits, 5, implementation="composite", projection="hadamard"
    )
    dense = oracle_projection(m, bits, 5) @ (unpack(signs, n) * scales)
    x = tf.constant(rng.standard_normal((3, m)).astype(np.float32))
    np.testing.assert_allclose(form.matmul(x, [signs, scales]).numpy(), x @ dense, atol=1e-4)
    y = tf.constant(rng.standard_normal((3, n)).astype(np.float32))
    np.testing.assert_allclose(
        form.transposed_matmul(y, [signs, scales]).numpy(), y @ dense.T, atol=1e-4
    )


# ---------------------------------------------------------------- bad names
def test_bad_projection_names_raise_value_error(implementation):
    a = np.ones((4, 4), np.float32)
    with pytest.raises(ValueError, match="`projection` must be one of"):
        ops.simhash_compress(a, 3, implementation=implementation, projection="sparse")
    with pytest.raises(ValueError, match="`projection` must be one of"):
        ops.simhash_decompress(
            np.zeros((3, 1), np.uint8), np.ones(4, np.float32), 4, projection="Hadamard"
        )
    with pytest.raises(ValueError, match="`projection` must be one of"):
        ops.simhash_projection(4, 3, implementation=implementation, projection="")


def test_bad_projection_names_raise_in_core_and_compressor():
    core = _core_loader.core_or_warn("test")
    with pytest.raises(ValueError, match='`projection` must be "gaussian" or "hadamard"'):
        core.simhash_compress(np.ones((4, 4), np.float32), 3, projection="fast")
    with pytest.raises(ValueError, match="`projection` must be"):
        core.simhash_projection(4, 3, projection="fast")
    spec = spec_lib.default_op_hparams().parse("compression_option=2,projection=fast")
    with pytest.raises(ValueError, match="projection must be one of"):
        method_for_option(2).make_compressor(spec)


def test_bad_projection_attr_raises_in_the_kernel():
    lib = tf.load_op_library(ops._loader.native_library().path)
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError), match="`projection` must"):
        lib.matcomp_simhash_compress(tf.ones((4, 4)), num_bits=3, projection="fast")
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError), match="`projection` must"):
        lib.matcomp_simhash_projection(num_rows=4, num_bits=3, T=tf.float32, projection="fast")


def test_unknown_rows_in_a_composite_graph_is_a_clear_error():
    fn = tf.function(
        lambda a: ops.simhash_compress(a, 3, implementation="composite", projection="hadamard"),
        input_signature=[tf.TensorSpec([None, 4], tf.float32)],
    )
    with pytest.raises(ValueError, match="the rows of `a` must be known"):
        fn.get_concrete_function()
