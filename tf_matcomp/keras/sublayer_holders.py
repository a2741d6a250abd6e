"""Layers holding compressed sub-layers that reload from `.keras` files.

A layer such as MultiHeadAttention creates its own sub-layers (its query/key/value/output
EinsumDense, in `build`); a subclassed model creates them in `__init__`. After `compress_model`
(or `strip_compression`) swapped some of them for compressed (or stripped) layers in place,
`from_config` + `build`, which is what `keras.models.load_model` runs, would make stock ones
again and the saved weights would not fit them.

`record_swap(holder, path)` therefore turns the holder into an instance of a subclass of its
own class (one per class, `holder_class`) that

  * records in its config, for each swapped sub-layer (`path`: an attribute name, or
    "name[i]" for an item of a list attribute), that sub-layer's whole Keras serialization
    (class, config and build config, so its spec or compressed form too), and
  * once it is built again, puts the deserialized (built) sub-layers back at those paths,
    before the weights are loaded.

Every such subclass serializes under one registered name, `tf_matcomp>WithCompressedSublayers`,
its holder's own class recorded in the config; so loading the `.keras` file needs
`import tf_matcomp.keras`. The holder's class must itself be loadable: a Keras layer or a
class registered with `keras.saving.register_keras_serializable`; for any other class
`record_swap` warns (`NotReloadableWarning`) that the model's `.keras` file will not reload.
"""

import functools
import importlib
import re
import warnings
from typing import Dict, Optional

import tensorflow as tf

from tf_matcomp.keras.layers import _PACKAGE

keras = tf.keras

_CONFIG_KEY = "tf_matcomp_compressed_sublayers"
_BASE_KEY = "tf_matcomp_holder_class"
_ITEM = re.compile(r"^(\w+)\[(\d+)\]$")


class NotReloadableWarning(UserWarning):
    """A layer holding compressed sub-layers cannot be rebuilt from a `.keras` file."""


def _retrack(parent, old, new) -> None:
    """Makes `parent`'s list of tracked sub-layers hold `new` instead of `old`."""
    tracked = getattr(parent, "_layers", None)
    if isinstance(tracked, list):
        if old in tracked:
            tracked[tracked.index(old)] = new
        elif new not in tracked:
            tracked.append(new)


def set_sublayer(parent, path: str, new) -> None:
    """Puts `new` at `path` ("name" or "name[i]") of the built layer `parent`, in place of the
    sub-layer there, for Keras (its tracked layers) and for tf.train.Checkpoint."""
    old = _get(parent, path)
    item = _ITEM.match(path)
    if item is None:
        object.__setattr__(parent, path, new)  # not Keras' tracker: it locks built layers
        track = getattr(parent, "_track_trackable", None)
        if track is not None:  # the TF backend's checkpoint dependency still names `old`
            from keras.src.utils.tracking import DotNotTrackScope

            with DotNotTrackScope():  # its bookkeeping dict is one Keras would track
                track(new, name=path, overwrite=True)
    else:
        list.__setitem__(getattr(parent, item.group(1)), int(item.group(2)), new)
    _retrack(parent, old, new)


def _get(holder, path: str):
    item = _ITEM.match(path)
    if item is None:
        return getattr(holder, path, None)
    items = getattr(holder, item.group(1), None)
    index = int(item.group(2))
    return items[index] if isinstance(items, list) and index < len(items) else None


def _put(holder, path: str, layer) -> None:
    if not isinstance(_get(holder, path), keras.layers.Layer):
        raise ValueError(
            f"cannot rebuild layer {holder.name!r} ({type(holder).__name__}): its compressed "
            f"sub-layer {path!r} was not created again by from_config() and build()"
        )
    set_sublayer(holder, path, layer)


def _class_record(cls) -> dict:
    return {
        "module": cls.__module__,
        "class_name": cls.__qualname__,
        "registered_name": keras.utils.get_registered_name(cls),
    }


def _loadable_reason(cls) -> Optional[str]:
    """Why `_class_from_record(_class_record(cls))` would not give `cls` back, or None."""
    try:
        found = _class_from_record(_class_record(cls))
    except ValueError as error:
        return str(error)
    return None if found is cls else f"its class name resolves to {found!r}"


def _class_from_record(record: dict) -> type:
    """The holder's own class: a registered class, or a class of Keras itself (no other
    module is imported, as Keras' own safe deserialization)."""
    registered = keras.utils.get_registered_object(record["registered_name"])
    if registered is not None:
        return registered
    module = record["module"]
    if module == "keras" or module.startswith("keras."):
        found = getattr(importlib.import_module(module), record["class_name"], None)
        if isinstance(found, type):
            return found
    raise ValueError(
        f"class {record['class_name']!r} (module {module!r}) is neither a Keras class nor "
        "registered with keras.saving.register_keras_serializable"
    )


@keras.utils.register_keras_serializable(package=_PACKAGE)
class WithCompressedSublayers(keras.layers.Layer):
    """Mixin of every `holder_class`: records and restores the compressed sub-layers."""

    _holder_base: type = keras.layers.Layer

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        records = config.pop(_CONFIG_KEY)
        klass = holder_class(_class_from_record(config.pop(_BASE_KEY)))
        instance = super(WithCompressedSublayers, klass).from_config(config)
        object.__setattr__(instance, "_compressed_paths", list(records))
        object.__setattr__(instance, "_pending_sublayers", dict(records))
        instance._place_pending(only_existing=True)
        return instance

    def get_config(self):
        return {
            **super().get_config(),
            _BASE_KEY: _class_record(self._holder_base),
            _CONFIG_KEY: {
                path: keras.utils.serialize_keras_object(_get(self, path))
                for path in self._compressed_paths
            },
        }

    def build_from_config(self, config):
        super().build_from_config(config)
        self._place_pending(only_existing=False)

    def _place_pending(self, only_existing: bool) -> None:
        """Puts the recorded sub-layers in place: those whose stock twin exists already
        (created in `__init__`), or all of them (after `build`)."""
        pending: Dict[str, dict] = getattr(self, "_pending_sublayers", {})
        for path in list(pending):
            if only_existing and not isinstance(_get(self, path), keras.layers.Layer):
                continue
            _put(self, path, keras.utils.deserialize_keras_object(pending.pop(path)))


@functools.lru_cache(maxsize=None)
def holder_class(base: type) -> type:
    """The subclass of `base` (a Keras layer class) that records its compressed sub-layers."""
    if issubclass(base, WithCompressedSublayers):
        return base
    namespace = {"__module__": __name__, "__qualname__": base.__qualname__, "_holder_base": base}
    if not getattr(base.build, "_is_default", False):
        # A layer making its sub-layers in build (MultiHeadAttention) gets them put back
        # right after; the wrapper keeps build's signature, which Keras records.
        @functools.wraps(base.build)
        def build(self, *args, **kwargs):
            base.build(self, *args, **kwargs)
            self._place_pending(only_existing=False)

        namespace["build"] = build
    klass = type(base.__name__, (WithCompressedSublayers, base), namespace)
    # Serialized under the mixin's registered name (Keras has no public call that names a
    # class without also making the name resolve to it); from_config reads the holder's class.
    from keras.src.saving import object_registration

    object_registration.GLOBAL_CUSTOM_NAMES[klass] = keras.utils.get_registered_name(
        WithCompressedSublayers
    )
    return klass


def is_holder(layer) -> bool:
    """Whether `layer` records compressed sub-layers (see module doc)."""
    return isinstance(layer, WithCompressedSublayers)


def record_swap(holder, path: str) -> None:
    """Records that the sub-layer of `holder` at `path` was swapped (see module doc)."""
    if not is_holder(holder):
        reason = _loadable_reason(type(holder))
        if reason is not None:
            warnings.warn(
                f"layer {holder.name!r} ({type(holder).__name__}) holds compressed "
                f"sub-layers but its .keras file will not reload: {reason}. Keep its weights "
                "with save_weights or tf.train.Checkpoint",
                NotReloadableWarning,
                stacklevel=4,
            )
        holder.__class__ = holder_class(type(holder))
        object.__setattr__(holder, "_compressed_paths", [])
    if path not in holder._compressed_paths:
        holder._compressed_paths.append(path)
