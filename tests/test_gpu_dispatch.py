"""The dispatcher's GPU rules, checked on any machine by pretending a GPU is visible.

"auto" runs the native kernel on the CPU, and on a GPU only when the library holds CUDA kernels;
never under XLA or on a TPU. What actually runs on a real GPU: tests/test_gpu_kernels.py.
"""

import pytest
import tensorflow as tf

from tf_matcomp.ops import _dispatch, _loader


@pytest.fixture
def pretend(monkeypatch):
    """pretend(visible={"GPU"}, gpu_kernels=True): the devices TF sees and the library's kind."""

    def configure(visible=frozenset(), gpu_kernels=False):
        library = _loader.NativeLibrary(object(), "/fake.so", "loaded", gpu_kernels)
        monkeypatch.setattr(_dispatch._loader, "native_library", lambda: library)
        monkeypatch.setattr(_dispatch, "_visible_device_types", lambda: frozenset(visible))

    return configure


def choose(implementation="auto"):
    return _dispatch.dispatch(
        "probe", implementation, lambda library: "native", lambda: "composite"
    )


@pytest.mark.parametrize(
    "visible,gpu_kernels,expected",
    [
        ((), False, "native"),  # no accelerator: nothing changes
        ((), True, "native"),
        (("GPU",), False, "composite"),  # a CPU-only library on a GPU machine: as before
        (("GPU",), True, "native"),  # the GPU kernels
        (("TPU",), True, "composite"),
        (("GPU", "TPU"), True, "composite"),
    ],
)
def test_auto_by_visible_devices_and_library(pretend, visible, gpu_kernels, expected):
    pretend(visible, gpu_kernels)
    assert choose() == expected


@pytest.mark.parametrize("gpu_kernels", [False, True])
def test_explicit_cpu_scope_keeps_the_native_kernel(pretend, gpu_kernels):
    pretend(("GPU",), gpu_kernels)
    with tf.device("/CPU:0"):
        assert choose() == "native"


def test_gpu_scope_without_a_gpu_falls_back_to_the_cpu(pretend):
    pretend((), False)
    with tf.device("/GPU:0"):
        assert _dispatch._placement() == "CPU"
        assert choose() == "native"


def test_gpu_scope_with_a_gpu_needs_gpu_kernels(pretend):
    pretend(("GPU", "TPU"), False)
    with tf.device("/GPU:0"):
        assert _dispatch._placement() == "GPU"
        assert choose() == "composite"
    pretend(("GPU", "TPU"), True)
    with tf.device("/GPU:0"):
        assert choose() == "native"


def test_choice_is_made_while_tracing_with_the_scope_inside(pretend):
    pretend(("GPU",), True)
    seen = []

    @tf.function
    def traced():
        with tf.device("/CPU:0"):
            seen.append(_dispatch._placement())
        seen.append(_dispatch._placement())
        return tf.constant(0)

    traced()
    assert seen == ["CPU", "GPU"]


def test_function_traced_under_an_outer_scope_sees_it(pretend):
    pretend(("GPU",), True)
    seen = []

    @tf.function
    def traced():
        seen.append(_dispatch._placement())
        return tf.constant(0)

    with tf.device("/CPU:0"):
        traced()
    assert seen == ["CPU"]


def test_device_none_clears_the_outer_scope(pretend):
    pretend(("GPU",), True)
    graph = tf.Graph()
    with graph.as_default(), graph.device("/device:CPU:0"):
        assert _dispatch._placement() == "CPU"
        with graph.device(None):
            assert _dispatch._placement() == "GPU"


def test_xla_always_takes_the_composite(pretend):
    pretend(("GPU",), True)
    codes = {"native": 1, "composite": 2}
    traced = tf.function(lambda: tf.constant(codes[choose()]), jit_compile=True)
    assert traced().numpy() == codes["composite"]


def test_native_and_composite_ignore_placement(pretend):
    pretend(("TPU",), False)
    assert choose("native") == "native"
    assert choose("composite") == "composite"


@pytest.mark.parametrize(
    "visible,expected", [((), "native"), (("GPU",), "composite"), (("TPU",), "composite")]
)
def test_auto_keeps_an_op_without_a_gpu_kernel_off_the_gpu(pretend, visible, expected):
    """An op with CPU kernels only (gpu_kernel=False) runs its composite on a GPU, even where
    the library holds CUDA kernels for the others."""
    pretend(visible, True)
    chosen = _dispatch.dispatch(
        "probe", "auto", lambda library: "native", lambda: "composite", gpu_kernel=False
    )
    assert chosen == expected
    with tf.device("/CPU:0"):
        assert (
            _dispatch.dispatch(
                "probe", "auto", lambda library: "native", lambda: "composite", gpu_kernel=False
            )
            == "native"
        )
