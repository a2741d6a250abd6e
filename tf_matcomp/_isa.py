"""Which of the native libraries' per-ISA builds this CPU runs (see setup.py).

A portable build (the default of setup.py on x86-64) holds the op library and `_core` three
times: the baseline for any x86-64-v2 CPU under the plain names, and the hot code (cc/core and
the `*_cpu.cc` kernels) again for x86-64-v3 (AVX2, FMA) and x86-64-v4 (AVX-512) under names
with the level in them. The loaders take the best level the CPU and the OS support, read here
from the kernel's CPU flags before anything is loaded: a library built for a level the CPU
lacks dies with SIGILL as soon as it runs.

`TF_MATCOMP_ISA=x86-64-v2|x86-64-v3|x86-64-v4` asks for a level (e.g. to compare them); one
the CPU lacks is refused with a warning, and the best supported level is used instead.
"""

import functools
import os
import platform
import warnings
from typing import FrozenSet, Tuple

ISA_ENV = "TF_MATCOMP_ISA"
BASELINE = "x86-64-v2"
# Above the baseline, best first, each with the flags it adds to the levels below it: the
# /proc/cpuinfo names of what GCC's -march level assumes (abm is LZCNT). The kernel lists AVX
# flags only when the OS saves AVX state.
LEVEL_FLAGS = {
    "x86-64-v4": frozenset({"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}),
    "x86-64-v3": frozenset({"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe"}),
}
VARIANT_LEVELS: Tuple[str, ...] = tuple(LEVEL_FLAGS)


def ops_library_file(level: str) -> str:
    """The op library's file name for a variant level: "_matcomp_ops.x86-64-v3.so"."""
    return f"_matcomp_ops.{level}.so"


def core_module_name(level: str) -> str:
    """`_core`'s module name for a variant level: "x86-64-v3" → "_core_x86_64_v3"."""
    return "_core_" + level.replace("-", "_")


@functools.lru_cache(maxsize=None)
def _cpu_flags() -> FrozenSet[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def required_flags(level: str) -> FrozenSet[str]:
    """Every CPU flag a level's build may use: its own and those of the levels below it."""
    index = VARIANT_LEVELS.index(level)
    return frozenset().union(*(LEVEL_FLAGS[lower] for lower in VARIANT_LEVELS[index:]))


def _supported(level: str) -> bool:
    return level == BASELINE or required_flags(level) <= _cpu_flags()


@functools.lru_cache(maxsize=None)
def preferred_levels() -> Tuple[str, ...]:
    """The variant levels to try, best first (the baseline is the fallback, not listed).
    Empty off x86-64."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return ()
    requested = os.environ.get(ISA_ENV, "").strip()
    levels = tuple(level for level in VARIANT_LEVELS if _supported(level))
    if not requested:
        return levels
    if requested != BASELINE and requested not in LEVEL_FLAGS:
        warnings.warn(
            f"{ISA_ENV}={requested!r} is not one of {(BASELINE,) + VARIANT_LEVELS}; ignored",
            RuntimeWarning,
            stacklevel=2,
        )
        return levels
    if not _supported(requested):
        warnings.warn(
            f"{ISA_ENV}={requested}: this CPU lacks "
            f"{sorted(required_flags(requested) - _cpu_flags())}; using the best level it has",
            RuntimeWarning,
            stacklevel=2,
        )
        return levels
    return tuple(level for level in levels if level == requested)
