"""The portable build's ISA levels: which level the loaders pick, and (where a portable build is
present) that every level this CPU runs loads and computes what the baseline computes."""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from tf_matcomp import _isa
from tf_matcomp.ops import _loader

V3_FLAGS = _isa.LEVEL_FLAGS["x86-64-v3"]
V4_FLAGS = V3_FLAGS | _isa.LEVEL_FLAGS["x86-64-v4"]


@pytest.fixture
def cpu(monkeypatch):
    """Sets the CPU flags `_isa` sees and forgets its cached choice."""

    def set_flags(flags, requested=None, machine="x86_64"):
        monkeypatch.setattr(_isa, "_cpu_flags", lambda: frozenset(flags))
        monkeypatch.setattr(_isa.platform, "machine", lambda: machine)
        if requested is None:
            monkeypatch.delenv(_isa.ISA_ENV, raising=False)
        else:
            monkeypatch.setenv(_isa.ISA_ENV, requested)
        _isa.preferred_levels.cache_clear()

    yield set_flags
    _isa.preferred_levels.cache_clear()


@pytest.mark.parametrize(
    "flags,levels",
    [
        (set(), ()),
        (V3_FLAGS - {"fma"}, ()),  # one missing flag rules the level out
        (V3_FLAGS, ("x86-64-v3",)),
        (V4_FLAGS, ("x86-64-v4", "x86-64-v3")),
        (_isa.LEVEL_FLAGS["x86-64-v4"], ()),  # AVX-512 without AVX2/FMA/BMI: neither
    ],
)
def test_levels_follow_the_cpu_flags(cpu, flags, levels):
    cpu(flags)
    assert _isa.preferred_levels() == levels


def test_off_x86_only_the_baseline_is_used(cpu):
    cpu(V4_FLAGS, machine="aarch64")
    assert _isa.preferred_levels() == ()


@pytest.mark.parametrize("requested,levels", [("x86-64-v3", ("x86-64-v3",)), ("x86-64-v2", ())])
def test_a_supported_requested_level_is_the_only_one_tried(cpu, requested, levels):
    cpu(V4_FLAGS, requested)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _isa.preferred_levels() == levels


@pytest.mark.parametrize(
    "flags,requested,match",
    [(V3_FLAGS, "x86-64-v4", "this CPU lacks .*avx512"), (V4_FLAGS, "avx9", "is not one of")],
)
def test_an_unusable_requested_level_warns_and_falls_back(cpu, flags, requested, match):
    cpu(flags, requested)
    with pytest.warns(RuntimeWarning, match=match):
        levels = _isa.preferred_levels()
    assert levels == tuple(
        level for level in _isa.VARIANT_LEVELS if _isa.required_flags(level) <= flags
    )


def test_the_op_loader_takes_the_best_variant_file_present(cpu, monkeypatch, tmp_path):
    monkeypatch.setattr(_loader, "_PACKAGE_DIR", str(tmp_path))
    monkeypatch.delenv(_loader.LIBRARY_PATH_ENV, raising=False)
    baseline = tmp_path / "_matcomp_ops.cpython-311-x86_64-linux-gnu.so"
    baseline.touch()
    cpu(V4_FLAGS)
    assert _loader._find_library() == str(baseline)  # no variant built
    (tmp_path / _isa.ops_library_file("x86-64-v3")).touch()
    assert _loader._find_library() == _loader.variant_path("x86-64-v3")
    (tmp_path / _isa.ops_library_file("x86-64-v4")).touch()
    assert _loader._find_library() == _loader.variant_path("x86-64-v4")
    cpu(V3_FLAGS)  # the v4 file is there, but this CPU cannot run it
    assert _loader._find_library() == _loader.variant_path("x86-64-v3")
    cpu(set())
    assert _loader._find_library() == str(baseline)


_BUILT_LEVELS = [
    level
    for level in _isa.VARIANT_LEVELS
    if os.path.exists(_loader.variant_path(level))
    and _isa.required_flags(level) <= _isa._cpu_flags()
]

_COMPUTE = """
import json, sys
import numpy as np
import tensorflow as tf
import tf_matcomp
from tf_matcomp import _core, ops
rng = np.random.default_rng(0)
a = rng.standard_normal((96, 80)).astype(np.float32)
out = {
    "library": ops._loader.native_library().path,
    "core": _core.__name__,
    "blend": ops.low_rank_blend(a, a[:, :7], a[:7, :], 0.3, implementation="native").numpy(),
    "scales": ops.simhash_compress(a, 33, implementation="native")[1].numpy(),
    "core_scales": _core.simhash_compress(a, 33)[1],
    "codebook": ops.kmeans_quantize(a, 16, implementation="native")[0].numpy(),
}
np.save(sys.argv[1], out, allow_pickle=True)
"""


def _compute(level, tmp_path):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=repo, TF_MATCOMP_ISA=level)
    env.pop(_loader.LIBRARY_PATH_ENV, None)
    path = tmp_path / f"{level}.npy"
    subprocess.run([sys.executable, "-c", _COMPUTE, str(path)], check=True, env=env, timeout=240)
    return np.load(path, allow_pickle=True).item()


@pytest.mark.skipif(
    not _BUILT_LEVELS, reason="no portable build here (setup.py without TF_MATCOMP_MARCH)"
)
@pytest.mark.parametrize("level", _BUILT_LEVELS)
def test_every_built_level_loads_and_agrees_with_the_baseline(level, tmp_path):
    baseline, variant = _compute("x86-64-v2", tmp_path), _compute(level, tmp_path)
    assert variant["library"] == _loader.variant_path(level)
    assert variant["core"] == f"tf_matcomp.{_isa.core_module_name(level)}"
    assert baseline["core"] == "tf_matcomp._core"
    for key in ("blend", "scales", "core_scales", "codebook"):
        np.testing.assert_allclose(variant[key], baseline[key], rtol=2e-5, atol=1e-6, err_msg=key)
