"""Builds tf_matcomp: the TF op library (g++ with tf.sysconfig flags) and the pybind11 core.

The op library `_matcomp_ops*.so` is compiled against the TensorFlow that is importable at build
time and embeds that version in the library (cc/kernels/build_info.cc); the loader refuses a library built for
another TF minor version (custom-op ABI) and falls back to the composites.

Portable by default: on x86-64 the libraries are built for x86-64-v2 (any CPU TensorFlow runs
on), and their per-element math (cc/core, `*_cpu.cc`) once more for x86-64-v3 (AVX2, FMA) and
x86-64-v4 (AVX-512); the loaders take the best level the CPU runs (tf_matcomp/_isa.py).
`TF_MATCOMP_MARCH=native` (or any -march value) builds one library for that target instead,
as scripts/demo.sh does for the machine it runs on.

`TF_MATCOMP_CUDA=1` adds the GPU kernels (cc/kernels/*.cu.cc, compiled by nvcc for sm_80 and
sm_90 plus sm_90 PTX, cudart linked statically when the toolkit has libcudart_static.a). nvcc is
`TF_MATCOMP_NVCC`, else `nvcc` on PATH, else `$CUDA_HOME/bin/nvcc`; `TF_MATCOMP_CUDA_INCLUDE` and
`TF_MATCOMP_CUDA_LIB` (os.pathsep-separated) add header and library folders, for CUDA installed
from NVIDIA's pip wheels. Without it nothing CUDA is compiled or linked.
"""

import concurrent.futures
import glob
import importlib.util
import os
import platform
import shlex
import shutil
import subprocess
import sys
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


def _load_isa_module():
    """tf_matcomp/_isa.py, which names the ISA levels the loaders choose from (read here
    without importing the package)."""
    spec = importlib.util.spec_from_file_location(
        "_isa", os.path.join(HERE, "tf_matcomp", "_isa.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ISA = _load_isa_module()
MARCH_ENV = "TF_MATCOMP_MARCH"


def _builds():
    """[(march, level)], the baseline first (level None: the plain library names).

    `TF_MATCOMP_MARCH` set: one build with that -march ("" for the compiler's default, "native"
    for this CPU only). Unset, on x86-64: the portable build, baseline x86-64-v2 plus the hot
    code again for each of ISA.VARIANT_LEVELS, which the loaders pick from at load time.
    """
    march = os.environ.get(MARCH_ENV)
    if march is not None:
        return [(march.strip() or None, None)]
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return [(None, None)]
    return [(ISA.BASELINE, None)] + [(level, level) for level in ISA.VARIANT_LEVELS]


def _march_flags(march):
    return [f"-march={march}"] if march else []


def _is_hot(source):
    """The per-element math (cc/core and the `*_cpu.cc` kernels): compiled once per ISA level.
    The rest (op registration, validation, bindings) is compiled once, for the baseline."""
    relative = os.path.relpath(source, HERE)
    return relative.startswith(os.path.join("cc", "core", "")) or relative.endswith("_cpu.cc")


def _progress(message):
    """One line per build step. pip hides a build's output unless -v, so where stderr is not a
    terminal the line also goes to the controlling terminal, if there is one."""
    line = f"[tf_matcomp build] {message}"
    print(line, file=sys.stderr, flush=True)
    if not sys.stderr.isatty():
        try:
            with open("/dev/tty", "w") as tty:
                tty.write(line + "\n")
        except OSError:
            pass


def _check_build_requirements(needs_pybind11):
    """Fails in seconds, naming what is missing, instead of minutes into the build."""
    missing = []
    for module in ("tensorflow",) + (("pybind11",) if needs_pybind11 else ()):
        if importlib.util.find_spec(module) is None:
            missing.append(module)
    compiler = os.environ.get("CXX", "g++")
    if shutil.which(compiler) is None:
        missing.append(f"a C++ compiler ({compiler}; set CXX to choose another)")
    if missing:
        raise SystemExit(
            "tf_matcomp: the native build needs " + ", ".join(missing) + ". Install them "
            "(e.g. `pip install pybind11 tensorflow-cpu==2.21.*`, Debian `apt-get install g++`) "
            "or build with isolation (`pip install .`), which brings its own pybind11 and "
            "TensorFlow."
        )


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


def _variant_files():
    """The file names a portable build writes beside the baseline libraries."""
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    for level in ISA.VARIANT_LEVELS:
        yield ISA.ops_library_file(level)
        yield ISA.core_module_name(level) + suffix


def _link(compiler, objects, output, flags):
    _progress(f"linking {os.path.relpath(output, HERE)}")
    subprocess.run(compiler + ["-shared", "-o", output] + objects + flags, check=True)


class BuildNative(build_ext):
    """Compiles the op library with the tf.sysconfig flags, the core module with pybind11's;
    in a portable build (see `_builds`) each once per ISA level, sharing the cold objects."""

    def run(self):
        _check_build_requirements(
            needs_pybind11=any(e.name.endswith("_core") for e in self.extensions)
        )
        super().run()

    def build_extension(self, ext):
        output = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(output), exist_ok=True)
        compiler = [os.environ.get("CXX", "g++")]
        # -DNDEBUG: no Eigen debug assertions (an abort) in release builds.
        common = ["-std=c++17", "-O3", "-DNDEBUG", "-fPIC", "-g0", "-Wall", "-I" + HERE]
        # e.g. the sanitizer build of scripts/sanitize.sh; also passed to the link.
        extra_flags = shlex.split(os.environ.get("TF_MATCOMP_EXTRA_FLAGS", ""))
        common += extra_flags
        temp = os.path.join(self.build_temp, ext.name.replace(".", "_"))
        builds = _builds()
        if len(builds) == 1:  # the loaders would prefer a level's file left by a portable build
            for name in _variant_files():
                stale = os.path.join(os.path.dirname(output), name)
                if os.path.exists(stale):
                    os.remove(stale)
        if ext.name.endswith("_matcomp_ops"):
            self._build_op_library(ext, output, compiler, common, extra_flags, temp, builds)
        else:
            self._build_core(ext, output, compiler, common, extra_flags, temp, builds)

    def copy_extensions_to_source(self):
        """--inplace: setuptools copies the baseline libraries; the level files go along, and
        a single build removes those of an earlier portable build. Each old file is unlinked
        first: overwriting it in place would change the library under a running process."""
        source_dir = self.get_finalized_command("build_py").get_package_dir("tf_matcomp")
        built_dir = os.path.join(self.build_lib, "tf_matcomp")
        for ext in self.extensions:
            inplace = os.path.join(source_dir, os.path.basename(self.get_ext_filename(ext.name)))
            if os.path.exists(inplace):
                os.remove(inplace)
        super().copy_extensions_to_source()
        for name in _variant_files():
            built, inplace = os.path.join(built_dir, name), os.path.join(source_dir, name)
            if os.path.exists(inplace):
                os.remove(inplace)
            if os.path.exists(built):
                self.copy_file(built, inplace, level=self.verbose)

    def _compile(self, compiler, sources, flags, temp, what, nvcc=None):
        if sources:
            _progress(f"compiling {len(sources)} {what} files (incremental)")
        return _parallel_compile(compiler, sources, flags, temp, nvcc)

    def _build_op_library(self, ext, output, compiler, common, extra_flags, temp, builds):
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
        hot = [s for s in sources if _is_hot(s)]
        baseline_march = builds[0][0]
        cold_objects = self._compile(
            compiler,
            [s for s in sources if not _is_hot(s)],
            flags + _march_flags(baseline_march),
            os.path.join(temp, "shared"),
            "op library",
            nvcc,
        )
        for march, level in builds:
            hot_objects = self._compile(
                compiler,
                hot,
                flags + _march_flags(march),
                os.path.join(temp, level or "base"),
                f"math ({march or 'default'})",
            )
            target = (
                output
                if level is None
                else os.path.join(os.path.dirname(output), ISA.ops_library_file(level))
            )
            # The hot objects first: the linker keeps their copies of shared inline code.
            _link(
                compiler,
                hot_objects + cold_objects,
                target,
                tf.sysconfig.get_link_flags() + link + extra_flags,
            )

    def _build_core(self, ext, output, compiler, common, extra_flags, temp, builds):
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
            + QUIET_TF_HEADERS
        )
        module_source = os.path.join(HERE, "cc", "python", "module.cc")
        bindings = [s for s in ext.sources if not _is_hot(s) and s != module_source]
        hot = [s for s in ext.sources if _is_hot(s)]
        cold_objects = self._compile(
            compiler,
            bindings,
            flags + _march_flags(builds[0][0]),
            os.path.join(temp, "shared"),
            "core binding",
        )
        link = shlex.split(os.environ.get("LDFLAGS", "")) + extra_flags + ["-lpthread"]
        for march, level in builds:
            name = "_core" if level is None else ISA.core_module_name(level)
            level_flags = flags + _march_flags(march)
            level_temp = os.path.join(temp, level or "base")
            objects = self._compile(
                compiler, hot, level_flags, level_temp, f"math ({march or 'default'})"
            )
            objects += self._compile(
                compiler,
                [module_source],
                level_flags + [f"-DMATCOMP_CORE_MODULE={name}"],
                level_temp,
                "module",
            )
            target = (
                output
                if level is None
                else os.path.join(
                    os.path.dirname(output), name + sysconfig.get_config_var("EXT_SUFFIX")
                )
            )
            _link(compiler, objects + cold_objects, target, link)


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
