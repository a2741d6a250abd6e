"""Builds tf_matcomp: the TF op library (g++ with tf.sysconfig flags) and the pybind11 core.

The op library `_matcomp_ops*.so` is compiled against the TensorFlow that is importable at build
time and embeds that version in the library (cc/kernels/build_info.cc); the loader refuses a library built for
another TF minor version (custom-op ABI) and falls back to the composites.

`TF_MATCOMP_CUDA=1` adds the GPU kernels (cc/kernels/*.cu.cc, compiled by nvcc for sm_80 and
sm_90 plus sm_90 PTX, cudart linked statically when the toolkit has libcudart_static.a). nvcc is
`TF_MATCOMP_NVCC`, else `nvcc` on PATH, else `$CUDA_HOME/bin/nvcc`; `TF_MATCOMP_CUDA_INCLUDE` and
`TF_MATCOMP_CUDA_LIB` (os.pathsep-separated) add header and library folders, for CUDA installed
from NVIDIA's pip wheels. Without it nothing CUDA is compiled or linked.
"""

import concurrent.futures
import glob
import os
import shlex
import shutil
import subprocess
import sysconfig

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
# The version header cc/kernels/build_info.cc embeds into the library for the loader to check.
VERSION_HEADER = "matcomp_tf_version.h"
# The constants' one definition, parsed by tf_matcomp/constants.py (installed beside it).
CONSTANTS_HEADER = "constants.h"
# TF's headers are included as system headers (no warnings from them); these three classes
# still surface at our instantiation sites of TF/Eigen templates, by the thousand under GCC 12.
QUIET_TF_HEADERS = [
    "-Wno-deprecated-declarations",
    "-Wno-interference-size",
    "-Wno-maybe-uninitialized",
]


def _tf_compile_flags(tf):
    return [
        ("-isystem" + flag[2:]) if flag.startswith("-I") else flag
        for flag in tf.sysconfig.get_compile_flags()
    ]


CUDA_ENV = "TF_MATCOMP_CUDA"
# Real sm_80 and sm_90 code, plus sm_90 PTX that newer GPUs JIT-compile (CUDA 13 has no sm_6x).
CUDA_ARCH_FLAGS = [
    "-gencode",
    "arch=compute_80,code=sm_80",
    "-gencode",
    "arch=compute_90,code=sm_90",
    "-gencode",
    "arch=compute_90,code=compute_90",
]
# cudart statically: no libcudart.so to find or clash with the CUDA runtime TensorFlow loads.
CUDART_STATIC = ["-l:libcudart_static.a", "-ldl", "-lrt", "-lpthread"]


def _sources(*patterns, cuda=False):
    found = []
    for pattern in patterns:
        found += glob.glob(os.path.join(HERE, pattern))
    return sorted(path for path in found if cuda or not path.endswith(".cu.cc"))


def _cuda_requested():
    return os.environ.get(CUDA_ENV, "").strip() not in ("", "0")


def _env_dirs(name):
    return [path for path in os.environ.get(name, "").split(os.pathsep) if path]


class CudaToolkit:
    """nvcc and the CUDA headers and runtime library it belongs to (see the module doc)."""

    def __init__(self):
        home = os.environ.get("CUDA_HOME", "/usr/local/cuda")
        nvcc = (
            os.environ.get("TF_MATCOMP_NVCC")
            or shutil.which("nvcc")
            or shutil.which("nvcc", path=os.path.join(home, "bin"))
        )
        if not nvcc:
            raise SystemExit(
                f"{CUDA_ENV}=1 needs nvcc, but none was found (looked at "
                f"TF_MATCOMP_NVCC, PATH and {home}/bin); install the CUDA toolkit "
                f"or unset {CUDA_ENV}"
            )
        self.nvcc = nvcc
        root = self._toolkit_root()
        self.include_dirs = [os.path.join(root, "include")] + _env_dirs("TF_MATCOMP_CUDA_INCLUDE")
        self.lib_dirs = [
            d
            for d in [os.path.join(root, "lib64"), os.path.join(root, "lib")]
            + _env_dirs("TF_MATCOMP_CUDA_LIB")
            if os.path.isdir(d)
        ]

    def _toolkit_root(self):
        """The toolkit nvcc belongs to, as nvcc reports it (nvcc may be a wrapper script)."""
        dry = subprocess.run(
            [self.nvcc, "--dryrun", "-x", "cu", "-c", os.devnull, "-o", os.devnull],
            capture_output=True,
            text=True,
        )
        for line in (dry.stdout + dry.stderr).splitlines():
            if line.startswith("#$ TOP="):
                return os.path.normpath(line[len("#$ TOP=") :].strip())
        return os.path.dirname(os.path.dirname(os.path.realpath(self.nvcc)))

    def link_flags(self):
        for lib_dir in self.lib_dirs:
            if os.path.exists(os.path.join(lib_dir, "libcudart_static.a")):
                return ["-L" + lib_dir] + CUDART_STATIC
        for lib_dir in self.lib_dirs:  # pip wheels ship only the shared runtime
            shared = sorted(glob.glob(os.path.join(lib_dir, "libcudart.so.*")))
            if shared:
                return [
                    "-L" + lib_dir,
                    "-l:" + os.path.basename(shared[0]),
                    "-Wl,-rpath," + lib_dir,
                ]
        raise SystemExit(
            f"{CUDA_ENV}=1: no libcudart_static.a or libcudart.so.* in "
            f"{self.lib_dirs}; set TF_MATCOMP_CUDA_LIB"
        )

    def host_flags(self, shim_root):
        """For the C++ sources of a GPU build: GOOGLE_CUDA and the CUDA headers. TF's
        gpu_kernel_helper.h includes "third_party/gpus/cuda/include/...", which only the CUDA
        build of TF ships: `shim_root` gets that path as a link to the toolkit's headers."""
        shim = os.path.join(shim_root, "third_party", "gpus", "cuda")
        os.makedirs(shim, exist_ok=True)
        link = os.path.join(shim, "include")
        runtime = next(
            (d for d in self.include_dirs if os.path.exists(os.path.join(d, "cuda_runtime.h"))),
            None,
        )
        if runtime is None:
            raise SystemExit(
                f"{CUDA_ENV}=1: no cuda_runtime.h in {self.include_dirs}; set "
                f"TF_MATCOMP_CUDA_INCLUDE"
            )
        if os.path.realpath(link) != os.path.realpath(runtime):
            if os.path.lexists(link):
                os.remove(link)
            os.symlink(runtime, link)
        return (
            ["-DGOOGLE_CUDA=1"]
            + ["-isystem" + d for d in self.include_dirs]
            + ["-isystem" + shim_root]
        )


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


def _nvcc_flags(cxx_flags):
    """nvcc's flags for a .cu.cc: the defines and include dirs of the C++ build, the rest of the
    C++ flags passed through to the host compiler."""
    own, host = [], []
    for flag in cxx_flags:
        if flag.startswith("-isystem"):  # nvcc wants `-isystem DIR`
            own += ["-isystem", flag[len("-isystem") :]]
        elif flag.startswith(("-D", "-I")):
            own.append(flag)
        elif "std=" not in flag:
            host.append(flag)
    return (
        ["-x", "cu", "-std=c++17", "-O3", "--expt-relaxed-constexpr", "-Xcompiler", ",".join(host)]
        + own
        + CUDA_ARCH_FLAGS
    )


def _parallel_compile(compiler, sources, flags, build_temp, nvcc=None):
    os.makedirs(build_temp, exist_ok=True)

    def compile_one(source):
        rel = os.path.relpath(source, HERE).replace(os.sep, "_")
        obj = os.path.join(build_temp, rel + ".o")
        if source.endswith(".cu.cc"):
            command, source_flags = [nvcc], _nvcc_flags(flags) + ["-MD", "-MF", obj[:-2] + ".d"]
        else:
            command, source_flags = compiler, flags + ["-MMD"]
        if not _is_stale(obj, source_flags):
            return obj
        subprocess.run(command + ["-c", source, "-o", obj] + source_flags, check=True)
        with open(obj + ".flags", "w") as f:
            f.write(" ".join(source_flags))
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
        # -DNDEBUG: no Eigen debug assertions (an abort) in release builds.
        common = [
            "-std=c++17",
            "-O3",
            "-DNDEBUG",
            "-fPIC",
            "-g0",
            "-Wall",
            "-I" + HERE,
        ] + _arch_flags()
        temp = os.path.join(self.build_temp, ext.name.replace(".", "_"))
        if ext.name.endswith("_matcomp_ops"):
            import tensorflow as tf  # only needed (and only importable) for the op library

            os.makedirs(temp, exist_ok=True)
            with open(os.path.join(temp, VERSION_HEADER), "w") as f:
                f.write(f'#define TF_MATCOMP_BUILT_FOR_TF "{tf.__version__}"\n')
            flags = common + ["-I" + temp] + _tf_compile_flags(tf) + QUIET_TF_HEADERS
            sources, nvcc, link = ext.sources, None, []
            if _cuda_requested():
                cuda = CudaToolkit()
                flags += cuda.host_flags(os.path.join(temp, "cuda_shim"))
                sources = _sources("cc/kernels/*.cc", "cc/core/*.cc", cuda=True)
                nvcc, link = cuda.nvcc, cuda.link_flags()
            objects = _parallel_compile(compiler, sources, flags, temp, nvcc)
            subprocess.run(
                compiler
                + ["-shared", "-o", output]
                + objects
                + tf.sysconfig.get_link_flags()
                + link,
                check=True,
            )
        else:
            import pybind11
            import tensorflow as tf  # the core uses Eigen, which TF's include dir ships

            flags = (
                common
                + [
                    "-fvisibility=hidden",
                    "-I" + pybind11.get_include(),
                    "-I" + sysconfig.get_paths()["include"],
                ]
                + _tf_compile_flags(tf)
            )
            objects = _parallel_compile(compiler, ext.sources, flags, temp)
            extra = shlex.split(os.environ.get("LDFLAGS", ""))
            subprocess.run(
                compiler + ["-shared", "-o", output] + objects + extra + ["-lpthread"], check=True
            )


class BuildPyWithConstants(build_py):
    """Also installs cc/core/constants.h as tf_matcomp/constants.h: tf_matcomp.constants parses
    it (the constants' one definition) in an installed package, where cc/ is absent."""

    def run(self):
        super().run()
        target = os.path.join(self.build_lib, "tf_matcomp", CONSTANTS_HEADER)
        self.copy_file(os.path.join(HERE, "cc", "core", CONSTANTS_HEADER), target)


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
    cmdclass={"build_ext": BuildNative, "build_py": BuildPyWithConstants},
    entry_points={"console_scripts": ["tf-matcomp=tf_matcomp.cli:main"]},
    zip_safe=False,
)
