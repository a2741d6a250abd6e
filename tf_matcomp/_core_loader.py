"""The C++ core module `tf_matcomp._core`, when it is there (the build for the best ISA level
this CPU runs, where a portable build holds several: see `tf_matcomp._isa`).

`import tf_matcomp` never needs it. The NumPy update paths that use it (simhash, k-means) ask
`core_or_warn`; without it they warn once, naming why, and run the TF op instead (the same
algorithm: native kernel or composite).
"""

import functools
import importlib
import warnings
from typing import Optional

from tf_matcomp import _isa


@functools.lru_cache(maxsize=None)
def _load():
    # A portable build also holds `_core_x86_64_v3` / `_v4`: the best one this CPU runs first.
    for level in _isa.preferred_levels():
        try:
            return importlib.import_module(f"tf_matcomp.{_isa.core_module_name(level)}"), None
        except ImportError:
            continue
    try:
        return importlib.import_module("tf_matcomp._core"), None
    except ImportError as error:
        return None, f"tf_matcomp._core failed to import ({error})"


def core():
    """The `_core` module, or None when it cannot be imported."""
    return _load()[0]


def unavailable_reason() -> Optional[str]:
    """Why `_core` is missing (None when it is there)."""
    return _load()[1]


@functools.lru_cache(maxsize=None)
def _warn_once(what: str) -> None:
    warnings.warn(
        f"{what}: {unavailable_reason()}; running the TF op instead (build the "
        f"package, e.g. `pip install .`, to get the C++ core)",
        RuntimeWarning,
        stacklevel=3,
    )


def core_or_warn(what: str):
    """The `_core` module; without it None, after warning once for `what`."""
    module = core()
    if module is None:
        _warn_once(what)
    return module
