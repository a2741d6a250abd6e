"""Finds and loads the native op library once, lazily, and says why when it cannot.

The library is looked for inside the installed package (`tf_matcomp/_matcomp_ops*.so`, the build
for the best ISA level this CPU runs where a portable build holds several, see `tf_matcomp._isa`),
or at the path in `TF_MATCOMP_OPS_LIBRARY` (used by the Bazel build). `TF_MATCOMP_FORCE_COMPOSITE=1` skips
it, and every op then runs its pure-TF composite.
"""

import functools
import glob
import os
import re
import warnings
from typing import NamedTuple, Optional

import tensorflow as tf

from tf_matcomp import _isa

FORCE_COMPOSITE_ENV = "TF_MATCOMP_FORCE_COMPOSITE"
LIBRARY_PATH_ENV = "TF_MATCOMP_OPS_LIBRARY"
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Written into the library by cc/kernels/build_info.cc; read without loading the library.
_BUILD_MARKER = re.compile(rb"tf_matcomp built for TensorFlow ([0-9A-Za-z.+-]+)\n")
_GPU_MARKER = re.compile(rb"tf_matcomp GPU kernels: (\w+)\n")


class NativeLibrary(NamedTuple):
    """Outcome of loading: `module` is None when unavailable, and `reason` says why.
    `gpu_kernels` says whether the library holds CUDA kernels (built with TF_MATCOMP_CUDA=1 or
    Bazel's --config=cuda)."""

    module: Optional[object]
    path: Optional[str]
    reason: str
    gpu_kernels: bool = False


def variant_path(level: str, folder: Optional[str] = None) -> str:
    """Where a portable build puts the op library built for ISA `level` (see `_isa`), in
    `folder` (default: the package's)."""
    return os.path.join(folder or _PACKAGE_DIR, _isa.ops_library_file(level))


def library_in(folder: str) -> Optional[str]:
    """The op library a build left in `folder`: its variant for the best ISA level this CPU
    runs, else the baseline build; None when there is neither."""
    for level in _isa.preferred_levels():
        if os.path.exists(variant_path(level, folder)):
            return variant_path(level, folder)
    variants = {variant_path(level, folder) for level in _isa.VARIANT_LEVELS}
    candidates = sorted(
        path for path in glob.glob(os.path.join(folder, "_matcomp_ops*.so")) if path not in variants
    )
    return candidates[0] if candidates else None


def _find_library() -> Optional[str]:
    return os.environ.get(LIBRARY_PATH_ENV) or library_in(_PACKAGE_DIR)


def _read_marker(library_path: str, marker: "re.Pattern[bytes]") -> Optional[str]:
    try:
        with open(library_path, "rb") as f:
            found = marker.search(f.read())
    except OSError:
        return None
    return found.group(1).decode() if found else None


def _built_tf_version(library_path: str) -> Optional[str]:
    return _read_marker(library_path, _BUILD_MARKER)


def built_with_cuda(library_path: str) -> bool:
    """Whether the library at `library_path` holds CUDA kernels (read from its marker)."""
    return _read_marker(library_path, _GPU_MARKER) == "CUDA"


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _load() -> NativeLibrary:
    if os.environ.get(FORCE_COMPOSITE_ENV, "").strip() not in ("", "0"):
        return NativeLibrary(None, None, f"{FORCE_COMPOSITE_ENV} is set")
    path = _find_library()
    if path is None:
        return NativeLibrary(None, None, f"no _matcomp_ops*.so in {_PACKAGE_DIR} (not built?)")
    built = _built_tf_version(path)
    if built is None:
        return NativeLibrary(None, path, f"{path} is unreadable or carries no TF version marker")
    if _minor(built) != _minor(tf.__version__):
        return NativeLibrary(
            None,
            path,
            f"{os.path.basename(path)} was built for TensorFlow "
            f"{built}, but {tf.__version__} is running; rebuild it",
        )
    try:
        return NativeLibrary(tf.load_op_library(path), path, "loaded", built_with_cuda(path))
    except (tf.errors.NotFoundError, OSError) as error:
        return NativeLibrary(None, path, f"loading {path} failed: {error}")


@functools.lru_cache(maxsize=None)
def native_library() -> NativeLibrary:
    """Loads the library on first use; warns once, with the reason, when it is unavailable."""
    library = _load()
    if library.module is None and not library.reason.startswith(FORCE_COMPOSITE_ENV):
        warnings.warn(
            f"tf_matcomp: native ops unavailable, using TF composites: {library.reason}",
            RuntimeWarning,
            stacklevel=3,
        )
    return library


def native_available() -> bool:
    """True when the native op library is loaded and its kernels will be used by "auto"."""
    return native_library().module is not None


def native_gpu_kernels() -> bool:
    """True when the loaded native library holds CUDA kernels, so "auto" runs it on GPUs too."""
    return native_library().gpu_kernels


def native_unavailable_reason() -> str:
    """Why native ops are not in use ("loaded" when they are)."""
    return native_library().reason
