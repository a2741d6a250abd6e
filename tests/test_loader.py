"""Loading the native library: found, version-checked, and a clean fallback when unusable.

Each case runs in a fresh interpreter: loading is once per process by design.
"""

import os
import subprocess
import sys
import textwrap

import pytest

from tf_matcomp.ops import _loader

PROBE = textwrap.dedent("""
    import warnings
    warnings.simplefilter("always")
    with warnings.catch_warnings(record=True) as caught:
        import numpy as np
        import tf_matcomp
        from tf_matcomp import ops
        available = ops.native_available()
        ops.native_available()  # a second query must not warn again
        w = ops.low_rank_blend(np.ones((2, 3)), np.ones((2, 1)), np.ones((1, 3)), 0.5)
    messages = [str(w.message) for w in caught if "tf_matcomp" in str(w.message)]
    print("AVAILABLE", available)
    print("REASON", ops.native_unavailable_reason())
    print("WARNINGS", len(messages), messages)
    print("RESULT", w.numpy().tolist())
""")


def run_probe(**env_overrides):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop(_loader.FORCE_COMPOSITE_ENV, None)
    env.update(env_overrides)
    root = os.path.dirname(os.path.dirname(os.path.abspath(_loader.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(root), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)


def test_library_is_found_and_loaded():
    result = run_probe()
    assert result["AVAILABLE"] == "True", result
    assert result["WARNINGS"].startswith("0")
    assert result["RESULT"] == str([[1.0] * 3] * 2)


def test_force_composite_environment_variable():
    result = run_probe(**{_loader.FORCE_COMPOSITE_ENV: "1"})
    assert result["AVAILABLE"] == "False"
    assert _loader.FORCE_COMPOSITE_ENV in result["REASON"]
    assert result["RESULT"] == str([[1.0] * 3] * 2)


def test_missing_library_falls_back_with_one_warning(tmp_path):
    result = run_probe(**{_loader.LIBRARY_PATH_ENV: str(tmp_path / "absent.so")})
    assert result["AVAILABLE"] == "False"
    assert result["WARNINGS"].startswith("1")
    assert result["RESULT"] == str([[1.0] * 3] * 2)


@pytest.mark.parametrize(
    "marker,reason",
    [
        (b"tf_matcomp built for TensorFlow 1.15.0\n", "built for TensorFlow 1.15.0"),
        (b"no marker here", "carries no TF version marker"),
    ],
)
def test_library_for_another_tf_is_not_loaded(tmp_path, marker, reason):
    fake = tmp_path / "_matcomp_ops.so"
    fake.write_bytes(b"\x7fELF" + marker)  # must be rejected before any dlopen
    result = run_probe(**{_loader.LIBRARY_PATH_ENV: str(fake)})
    assert result["AVAILABLE"] == "False"
    assert reason in result["REASON"]
    assert result["WARNINGS"].startswith("1")
    assert result["RESULT"] == str([[1.0] * 3] * 2)


def test_built_version_marker_matches_running_tf():
    import tensorflow as tf

    path = _loader.native_library().path
    assert _loader._built_tf_version(path) == tf.__version__
