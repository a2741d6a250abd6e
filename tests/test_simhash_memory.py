"""Simhash scratch memory: it follows the inputs and outputs (R is generated in row panels, never
whole), and scratch that cannot be allocated is an error, never a crash. Each case runs in a
subprocess: peak memory is per process, and the address-space limit must not hit pytest."""

import re
import subprocess
import sys
import textwrap

import pytest

from tf_matcomp import ops

pytestmark = pytest.mark.skipif(not ops.native_available(), reason="needs the native library")

# The case: a 64 KiB float32 input [16384, 1] with 65,536 bits, whose R [16384, 65536]
# would be 4 GiB.
ROWS, BITS = 16384, 65536

_PRELUDE = textwrap.dedent(
    """
    import os, resource, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    import numpy as np
    import tensorflow as tf
    from tf_matcomp import _core_loader, ops

    def peak_mib():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def limit_address_space(extra_mib):
        # RLIMIT_AS (what `prlimit --as` sets) at what the process maps now plus extra_mib.
        with open("/proc/self/status") as status:
            size_kib = next(int(l.split()[1]) for l in status if l.startswith("VmSize:"))
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (size_kib * 1024 + (extra_mib << 20), hard))

    core = _core_loader.core_or_warn("test")
    """
)


def run(body: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", _PRELUDE + textwrap.dedent(body)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr[-3000:])
    return result.stdout


@pytest.mark.parametrize("entry", ["kernel", "core"])
def test_peak_memory_follows_inputs_and_outputs(entry):
    out = run(
        f"""
        a = np.random.default_rng(0).standard_normal(({ROWS}, 1)).astype(np.float32)
        if "{entry}" == "kernel":
            compress = lambda a, k: ops.simhash_compress(a, k, implementation="native")
            decompress = lambda s, d: ops.simhash_decompress(s, d, {ROWS}, implementation="native")
        else:
            compress = lambda a, k: core.simhash_compress(a, k)
            decompress = lambda s, d: core.simhash_decompress(s, d, {ROWS})
        signs, scales = compress(a[:64], 8)  # warm-up: thread pools, kernels
        decompress(signs, scales)
        before = peak_mib()
        signs, scales = compress(a, {BITS})
        approx = np.asarray(decompress(signs, scales))
        print("GROWTH", peak_mib() - before)
        print("ERROR", np.linalg.norm(approx - a) / np.linalg.norm(a))
        """
    )
    growth = float(out.split("GROWTH")[1].split()[0])
    error = float(out.split("ERROR")[1].split()[0])
    # R alone would be 4096 MiB; the scratch is one panel of at most 2^24 float32 (64 MiB).
    assert growth < 200, out
    assert error < 0.6, out  # least squares; sign quantisation keeps it near sqrt(1 − 2/π)


# (rows, cols, num_bits) whose scratch (far) exceeds the limit while the outputs fit in it:
# Gaussian, a 64 MiB panel of R; hadamard, a 256 MiB Rᵀ·A tile (k · 256 columns).
SCRATCH_CASES = {"gaussian": (4096, 2048, 4095), "hadamard": (512, 256, 1 << 18)}


@pytest.mark.parametrize("projection", sorted(SCRATCH_CASES))
def test_scratch_that_cannot_be_allocated_is_an_error_not_a_signal(projection):
    rows, cols, bits = SCRATCH_CASES[projection]
    out = run(
        f"""
        a = tf.constant(np.random.default_rng(0).standard_normal(({rows}, {cols})), tf.float32)
        a_np = a.numpy()
        kwargs = dict(projection="{projection}")
        ops.simhash_compress(a[:64, :64], 1025, implementation="native", **kwargs)  # warm-up
        core.simhash_compress(a_np[:64, :64], 1025, **kwargs)
        limit_address_space(16)  # room for the outputs, not for the scratch
        try:
            ops.simhash_compress(a, {bits}, implementation="native", **kwargs)
            print("NO ERROR")
        except tf.errors.ResourceExhaustedError as error:
            print("KERNEL", error.message)
        try:
            core.simhash_compress(a_np, {bits}, **kwargs)
            print("NO ERROR")
        except MemoryError as error:
            print("CORE", error)
        """
    )
    assert "NO ERROR" not in out, out
    assert re.search(r"KERNEL .*SimhashCompress: out of memory allocating", out), out
    assert "CORE simhash_compress: out of memory" in out, out
