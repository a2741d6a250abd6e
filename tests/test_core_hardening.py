"""`tf_matcomp._core` on hostile inputs: misaligned views, views too large to copy, absurd
thread counts — clear errors or correct results, never a crash."""

import numpy as np
import pytest

from tf_matcomp import _core, constants


def _misaligned(shape, dtype, rng):
    """A C-contiguous view of `dtype` at an odd byte offset (np.frombuffer keeps it misaligned)."""
    count = int(np.prod(shape))
    itemsize = np.dtype(dtype).itemsize
    buffer = np.zeros(count * itemsize + 1, np.uint8)
    view = np.frombuffer(buffer.data, dtype=dtype, count=count, offset=1).reshape(shape)
    values = rng.standard_normal(shape).astype(dtype)
    buffer[1:] = np.frombuffer(values.tobytes(), np.uint8)
    assert not view.flags.aligned and view.flags.c_contiguous
    return view, values


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_misaligned_inputs_give_the_aligned_results(dtype, rng):
    view, values = _misaligned((12, 20), dtype, rng)
    for got, want in zip(
        _core.simhash_compress(view, 9, seed=3), _core.simhash_compress(values, 9, seed=3)
    ):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(
        _core.kmeans_quantize(view, 4, block_size=2, seed=1),
        _core.kmeans_quantize(values, 4, block_size=2, seed=1),
    ):
        np.testing.assert_array_equal(got, want)
    signs, scales = _core.simhash_compress(values, 9, seed=3)
    scales_view, _ = _misaligned(scales.shape, dtype, rng)
    scales_view_values = np.array(scales_view)
    np.testing.assert_array_equal(
        _core.simhash_decompress(signs, scales_view, 12, seed=3),
        _core.simhash_decompress(signs, scales_view_values, 12, seed=3),
    )


def test_a_view_too_large_to_copy_is_a_memory_error():
    huge = np.broadcast_to(np.float32(1), (1 << 20, 1 << 20))  # 4 TiB once copied
    with pytest.raises(MemoryError, match="`a` .* could not be copied"):
        _core.kmeans_quantize(huge, 4)


def test_thread_counts_are_bounded_and_any_allowed_count_gives_the_same_bytes(rng):
    a = rng.standard_normal((64, 48)).astype(np.float32)
    too_many = constants.ALL["kMaxCoreThreads"] + 1
    for call in (
        lambda t: _core.kmeans_quantize(a, 8, num_threads=t),
        lambda t: _core.simhash_compress(a, 17, num_threads=t),
        lambda t: _core.simhash_projection(8, 4, num_threads=t),
    ):
        with pytest.raises(ValueError, match="`num_threads` must be at most"):
            call(too_many)
    serial = _core.simhash_compress(a, 17, num_threads=1)
    widest = _core.simhash_compress(a, 17, num_threads=constants.ALL["kMaxCoreThreads"])
    for got, want in zip(widest, serial):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype,tiny", [(np.float32, 1e-41), (np.float64, 1e-310)])
def test_denormal_inputs_give_the_kernels_bytes(dtype, tiny, rng):
    # TF flushes denormals to zero in its kernels; _core does the same, so both agree.
    from tf_matcomp import ops

    a = rng.standard_normal((16, 24)).astype(dtype)
    a[::2] = (rng.standard_normal((8, 24)) * tiny).astype(dtype)
    assert (np.abs(a[0]) < np.finfo(dtype).tiny).any()  # there are denormals
    core_signs, core_scales = _core.simhash_compress(a, 7, seed=5)
    tf_signs, tf_scales = ops.simhash_compress(a, 7, seed=5, implementation="native")
    np.testing.assert_array_equal(core_signs, tf_signs.numpy())
    np.testing.assert_array_equal(core_scales, tf_scales.numpy())
    core_codebook, core_codes = _core.kmeans_quantize(a, 6, seed=2)
    tf_codebook, tf_codes = ops.kmeans_quantize(a, 6, seed=2, implementation="native")
    np.testing.assert_array_equal(core_codebook, tf_codebook.numpy())
    np.testing.assert_array_equal(core_codes, tf_codes.numpy())


def test_an_array_changed_by_another_thread_never_hangs_or_returns_nan(tmp_path):
    # _core reads the caller's array in place with the GIL released; a thread writing NaN
    # into it meanwhile must get an error or a finite result, promptly.
    script = tmp_path / "mutate.py"
    script.write_text(
        "import threading, numpy as np\n"
        "from tf_matcomp import _core\n"
        "rng = np.random.default_rng(0)\n"
        "for block in (1, 4):\n"
        "    for trial in range(20):\n"
        "        a = rng.standard_normal((512, 512)).astype(np.float32)\n"
        "        stop = threading.Event()\n"
        "        def spoil():\n"
        "            flat = a.reshape(-1)\n"
        "            while not stop.is_set():\n"
        "                flat[rng.integers(0, flat.size, 64)] = np.nan\n"
        "        thread = threading.Thread(target=spoil)\n"
        "        thread.start()\n"
        "        try:\n"
        "            codebook, _ = _core.kmeans_quantize(a, 16, block_size=block)\n"
        "            assert np.isfinite(codebook).all(), codebook\n"
        "            signs, scales = _core.simhash_compress(a, 33)\n"
        "            assert np.isfinite(scales).all()\n"
        "        except ValueError as error:\n"
        "            assert 'finite' in str(error), error\n"
        "        finally:\n"
        "            stop.set()\n"
        "            thread.join()\n"
        "print('ok')\n"
    )
    import os
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=repo + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=240
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"
