"""Repository rule exposing the local TensorFlow, pybind11 and Python to Bazel.

Runs the Python named by PYTHON_BIN_PATH (else `python3` on PATH), which must import tensorflow
and pybind11, and symlinks what it reports into an external repository.
"""

_PROBE = """
import json, sysconfig
import pybind11
import tensorflow as tf
print(json.dumps({
    "tf_include": tf.sysconfig.get_include(),
    "tf_lib": tf.sysconfig.get_lib(),
    "tf_compile_flags": tf.sysconfig.get_compile_flags(),
    "tf_version": tf.__version__,
    "pybind11_include": pybind11.get_include(),
    "python_include": sysconfig.get_paths()["include"],
}))
"""

_BUILD = """
package(default_visibility = ["//visibility:public"])

load("@bazel_tools//tools/python:toolchain.bzl", "py_runtime_pair")

cc_library(
    name = "tf_headers",
    hdrs = glob(["tf_include/**/*.h", "tf_include/**/*.hpp", "tf_include/**/*.inc",
                 "tf_include/Eigen/**", "tf_include/unsupported/**",
                 "tf_include/third_party/eigen3/**",
                 "tf_version_include/matcomp_tf_version.h"]),
    includes = ["tf_include", "tf_version_include"],
    defines = {defines},
)

filegroup(
    name = "tf_header_files",
    srcs = glob(["tf_include/**/*.h", "tf_include/**/*.hpp", "tf_include/**/*.inc",
                 "tf_include/Eigen/**", "tf_include/unsupported/**",
                 "tf_include/third_party/eigen3/**"]),
)

cc_library(
    name = "tf_framework",
    srcs = ["libtensorflow_framework.so.2"],
)

cc_library(
    name = "pybind11",
    hdrs = glob(["pybind11_include/**/*.h", "python_include/**/*.h"]),
    includes = ["pybind11_include", "python_include"],
)

py_runtime(
    name = "py3_runtime",
    interpreter_path = "{python}",
    python_version = "PY3",
)

py_runtime_pair(
    name = "runtime_pair",
    py3_runtime = ":py3_runtime",
)

toolchain(
    name = "python_toolchain",
    toolchain = ":runtime_pair",
    toolchain_type = "@bazel_tools//tools/python:toolchain_type",
)
"""

def _tf_configure_impl(ctx):
    python = ctx.os.environ.get("PYTHON_BIN_PATH", "python3")
    if not python.startswith("/"):
        found = ctx.which(python)
        if not found:
            fail("tf_configure: %s not found; set PYTHON_BIN_PATH to a Python with TensorFlow" % python)
        python = str(found)
    result = ctx.execute([python, "-c", _PROBE], quiet = True)
    if result.return_code != 0:
        fail("tf_configure: %s could not import tensorflow and pybind11:\n%s" % (python, result.stderr))
    info = json.decode(result.stdout.strip().split("\n")[-1])
    ctx.symlink(info["tf_include"], "tf_include")
    ctx.symlink(info["tf_lib"] + "/libtensorflow_framework.so.2", "libtensorflow_framework.so.2")
    ctx.symlink(info["pybind11_include"], "pybind11_include")
    ctx.symlink(info["python_include"], "python_include")
    defines = [flag[2:] for flag in info["tf_compile_flags"] if flag.startswith("-D")]
    ctx.file("tf_version_include/matcomp_tf_version.h",
             "#define TF_MATCOMP_BUILT_FOR_TF \"%s\"\n" % info["tf_version"])
    ctx.file("BUILD", _BUILD.replace("{defines}", repr(defines)).replace("{python}", python))
    # For rules that compile outside cc_* (nvcc in //cc:kernels_cu).
    ctx.file("defs.bzl", "TF_DEFINES = %s\n" % repr(defines))

tf_configure = repository_rule(
    implementation = _tf_configure_impl,
    environ = ["PYTHON_BIN_PATH"],
    local = True,
)
