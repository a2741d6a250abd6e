"""Shared fixtures: implementations and execution modes every op test is parametrized over."""

import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

import tf_matcomp  # noqa: E402

IMPLEMENTATIONS = ["native", "composite"]
MODES = ["eager", "function", "jit"]


def pytest_report_header(config):
    return (
        f"tensorflow {tf.__version__}; tf_matcomp native ops: "
        f"{tf_matcomp.ops.native_unavailable_reason()}"
    )


@pytest.fixture(params=IMPLEMENTATIONS)
def implementation(request):
    """Each op test runs on the native kernel and on the composite.

    The native case fails (not skips) when the library is not loaded: a missing build must
    not pass silently. TF_MATCOMP_FORCE_COMPOSITE=1 opts out deliberately.
    """
    if request.param == "native" and os.environ.get("TF_MATCOMP_FORCE_COMPOSITE"):
        pytest.skip("TF_MATCOMP_FORCE_COMPOSITE is set")
    if request.param == "native":
        assert tf_matcomp.ops.native_available(), tf_matcomp.ops.native_unavailable_reason()
    return request.param


def run_in_mode(mode, fn, *args):
    """Runs fn(*args) eagerly, inside tf.function, or inside tf.function(jit_compile=True)."""
    if mode == "eager":
        return fn(*args)
    if mode == "function":
        return tf.function(fn)(*args)
    if mode == "jit":
        return tf.function(fn, jit_compile=True)(*args)
    raise ValueError(mode)


def run_python_script(script: str, *args: str) -> str:
    """Runs `script` in a fresh Python process (e.g. with other thread settings) from the
    repository root and returns its stdout; a failure in it fails the test."""
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def outputs_by_thread_count(script: str, thread_counts=(1, 3)) -> list:
    """The stdout bytes of `script` run in a fresh Python process per thread count, given as its
    argv[1] (the script sets TF's intra-op threads from it)."""
    return [
        subprocess.run(
            [sys.executable, "-c", script, str(threads)], check=True, capture_output=True
        ).stdout
        for threads in thread_counts
    ]


@pytest.fixture(params=MODES)
def mode(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# Tests that limit the address space (RLIMIT_AS) or measure peak memory cannot run under
# scripts/sanitize.sh: AddressSanitizer's shadow memory needs the address space they limit.
needs_plain_memory = pytest.mark.skipif(
    "libasan" in os.environ.get("LD_PRELOAD", ""),
    reason="under AddressSanitizer, whose shadow memory takes the address space this limits",
)
