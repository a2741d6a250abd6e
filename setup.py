"""Builds tf_matcomp: the TF op library (g++ with tf.sysconfig flags) and the pybind11 core.

The op library `_matcomp_ops*.so` is compiled against the TensorFlow that is importable at build
time and embeds that version in the library (cc/kernels/build_info.cc); the loader refuses a library built for
another TF minor version (custom-op ABI) and falls back to the composites.
"""
import concurrent.futures
import glob
import os
import shlex
import subprocess
import sysconfig

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
# The version header cc/kernels/build_info.cc embeds into the library for the loader to check.
VERSION_HEADER = "matcomp_tf_version.h"
# TF's headers are included as system headers (no warnings from them); these three classes
# still surface at our instantiation sites of TF/Eigen templates, by the thousand under GCC 12.
QUIET_TF_HEADERS = ["-Wno-deprecated-declarations", "-Wno-interference-size",
                    "-Wno-maybe-uninitialized"]


def _tf_compile_flags(tf):
    return [("-isystem" + flag[2:]) if flag.startswith("-I") else flag
            for flag in tf.sysconfig.get_compile_flags()]


def _sources(*patterns):
    found = []
    for pattern in patterns:
        found += glob.glob(os.path.join(HERE, pattern))
    return sorted(path for path in found if not path.endswith(".cu.cc"))


def _arch_flags():
    """-march=native unless TF_MATCOMP_MARCH says otherwise (e.g. 'x86-64-v3' for a wheel)."""
    march = os.environ.get("TF_MATCOMP_MARCH", "native")
    return [f"-march={march}"] if march else []


def _is_stale(obj, flags):
    """Incremental builds (`setup.py build_ext --inplace`): recompile only when the object is
    missing, was built with other flags, or is older than a file its `-MMD` depfile lists."""
    try:
        with open(obj + ".flags") as f:
            if f.read() != " ".join(flags):
                return True
        with open(obj[:-2] + ".d") as f:
            deps = f.read().replace("\\\n", " ").split(":", 1)[1].split()
        built = os.path.getmtime(obj)
        return any(os.path.getmtime(dep) > built for dep in deps)
    except (OSError, IndexError):
        return True


def _parallel_compile(compiler, sources, flags, build_temp):
    os.makedirs(build_temp, exist_ok=True)

    def compile_one(source):
        rel = os.path.relpath(source, HERE).replace(os.sep, "_")
        obj = os.path.join(build_temp, rel + ".o")
        if not _is_stale(obj, flags):
            return obj
        subprocess.run(compiler + ["-c", source, "-o", obj, "-MMD"] + flags, check=True)
        with open(obj + ".flags", "w") as f:
            f.write(" ".join(flags))
        return obj

    jobs = int(os.environ.get("TF_MATCOMP_BUILD_JOBS", os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(compile_one, sources))


class BuildNative(build_ext):
    """Compiles the op library with the tf.sysconfig flags, the core module with pybind11's."""

    def build_extension(self, ext):
        output = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(output), exist_ok=True)
        compiler = [os.environ.get("CXX", "g++")]
        common = ["-std=c++17", "-O3", "-fPIC", "-g0", "-Wall", "-I" + HERE] + _arch_flags()
        temp = os.path.join(self.build_temp, ext.name.replace(".", "_"))
        if ext.name.endswith("_matcomp_ops"):
            import tensorflow as tf  # only needed (and only importable) for the op library

            os.makedirs(temp, exist_ok=True)
            with open(os.path.join(temp, VERSION_HEADER), "w") as f:
                f.write(f'#define TF_MATCOMP_BUILT_FOR_TF "{tf.__version__}"\n')
            flags = common + ["-I" + temp] + _tf_compile_flags(tf) + QUIET_TF_HEADERS
            objects = _parallel_compile(compiler, ext.sources, flags, temp)
            subprocess.run(compiler + ["-shared", "-o", output] + objects
                           + tf.sysconfig.get_link_flags(), check=True)
        else:
            import pybind11
            import tensorflow as tf  # the core uses Eigen, which TF's include dir ships

            flags = common + ["-fvisibility=hidden", "-I" + pybind11.get_include(),
                              "-I" + sysconfig.get_paths()["include"]] + _tf_compile_flags(tf)
            objects = _parallel_compile(compiler, ext.sources, flags, temp)
            extra = shlex.split(os.environ.get("LDFLAGS", ""))
            subprocess.run(compiler + ["-shared", "-o", output] + objects + extra
                           + ["-lpthread"], check=True)


def _extensions():
    exts = [Extension("tf_matcomp._matcomp_ops", _sources("cc/kernels/*.cc", "cc/core/*.cc"))]
    if _sources("cc/python/*.cc"):
        exts.append(Extension("tf_matcomp._core", _sources("cc/python/*.cc", "cc/core/*.cc")))
    return exts


setup(
    name="tf_matcomp",
    version="0.1.0",
    description="Weight-matrix compression during training for TensorFlow, with native kernels",
    long_description=open(os.path.join(HERE, "README.md")).read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["tf_matcomp", "tf_matcomp.*"]),
    python_requires=">=3.9",
    # TensorFlow itself is deliberately not required: users bring tensorflow or tensorflow-cpu.
    install_requires=["numpy"],
    extras_require={"demo": ["scikit-learn", "matplotlib"], "test": ["pytest", "scikit-learn"]},
    ext_modules=_extensions(),
    cmdclass={"build_ext": BuildNative},
    entry_points={"console_scripts": ["tf-matcomp=tf_matcomp.cli:main"]},
    zip_safe=False,
)
