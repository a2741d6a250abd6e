"""Rebuilding a Keras model with some layers replaced, its other weights copied over.

Shared by `compress_model` (stock layers → compressed twins) and `strip_compression`
(compressed layers → their deployable form). `replace(layer)` returns the built, filled
replacement of a layer, or None to keep it:

  * Functional and Sequential models (nested ones included) are cloned (`clone_model`,
    recursively); every layer not replaced gets its weights copied, and the original model
    is left untouched;
  * layers nested inside other layers (e.g. MultiHeadAttention's projections) and the layers
    of a subclassed model are replaced in place, attribute by attribute (a subclassed model
    is therefore modified and returned itself); each layer holding a replaced sub-layer
    records it (`sublayer_holders`), so that its `.keras` file reloads.
"""

from typing import Callable, Dict, Optional, Set

import tensorflow as tf

from tf_matcomp.keras import sublayer_holders

keras = tf.keras

Replace = Callable[[keras.layers.Layer], Optional[keras.layers.Layer]]


def _functional_class():
    from keras.src.models.functional import Functional

    return Functional


def _is_graph(layer) -> bool:
    return isinstance(layer, (keras.Sequential, _functional_class()))


def _layer_attributes(layer):
    """(name, value) of the attributes of `layer` holding a layer or a list of layers."""
    for name, value in list(vars(layer).items()):
        if name in ("_layers", "_tracker") or name.startswith("__"):
            continue
        if isinstance(value, keras.layers.Layer) or (
            isinstance(value, (list, tuple))
            and any(isinstance(v, keras.layers.Layer) for v in value)
        ):
            yield name, value


class _Rebuilder:
    def __init__(self, replace: Replace):
        self._replace = replace
        self._done: Dict[int, Optional[keras.layers.Layer]] = {}
        self._visited: Set[int] = set()

    def replacement(self, layer):
        """`replace(layer)`, computed once per layer object (shared layers stay shared)."""
        if id(layer) not in self._done:
            self._done[id(layer)] = self._replace(layer)
        return self._done[id(layer)]

    def clone(self, model):
        def clone_layer(layer):
            twin = self.replacement(layer)
            return twin if twin is not None else layer.__class__.from_config(layer.get_config())

        result = keras.models.clone_model(model, clone_function=clone_layer, recursive=True)
        self._copy_weights(model, result)
        return result

    def _copy_weights(self, model, clone) -> None:
        for layer in model.layers:
            twin = clone.get_layer(layer.name) if layer.weights else None
            if twin is None or self._done.get(id(layer)) is not None:
                continue
            if _is_graph(layer):
                self._copy_weights(layer, twin)
            elif getattr(layer, "_layers", None):
                self._pair(layer, twin)
            else:
                twin.set_weights(layer.get_weights())

    def _pair(self, layer, twin) -> None:
        """Copies `layer` into its fresh clone `twin` sub-layer by sub-layer (attributes of the
        same name), putting replacements in place: for layers holding layers, e.g.
        MultiHeadAttention."""
        for name, value in _layer_attributes(layer):
            other = getattr(twin, name, None)
            if not isinstance(other, keras.layers.Layer):
                continue
            new = self.replacement(value)
            if new is not None:
                sublayer_holders.set_sublayer(twin, name, new)
                sublayer_holders.record_swap(twin, name)
            elif getattr(value, "_layers", None):
                self._pair(value, other)
                if sublayer_holders.is_holder(other):
                    sublayer_holders.record_swap(twin, name)
            else:
                other.set_weights(value.get_weights())
        own = layer._trainable_variables + layer._non_trainable_variables
        for source, target in zip(own, twin._trainable_variables + twin._non_trainable_variables):
            target.assign(source)

    def in_place(self, parent) -> None:
        """Replaces, inside `parent`, every sub-layer `replace` asks for (recursively)."""
        if id(parent) in self._visited:
            return
        self._visited.add(id(parent))
        for name, value in _layer_attributes(parent):
            if isinstance(value, keras.layers.Layer):
                self._swap(parent, value, name)
            elif isinstance(value, list):
                for index, item in enumerate(list(value)):
                    if isinstance(item, keras.layers.Layer):
                        self._swap(parent, item, f"{name}[{index}]")

    def _swap(self, parent, layer, path: str) -> None:
        """Puts what `layer` (the sub-layer of `parent` at `path`) becomes in its place;
        `parent` records it when it changed (`sublayer_holders`)."""
        was_holder = sublayer_holders.is_holder(layer)
        new = self._replaced(layer)
        if new is not layer:
            sublayer_holders.set_sublayer(parent, path, new)
        if new is not layer or sublayer_holders.is_holder(layer) != was_holder:
            sublayer_holders.record_swap(parent, path)

    def _replaced(self, layer):
        if _is_graph(layer):
            return self.clone(layer)
        twin = self.replacement(layer)
        if twin is not None:
            return twin
        self.in_place(layer)
        return layer


def rebuild_model(model: keras.Model, replace: Replace, compile_clone: bool = True) -> keras.Model:
    """`model` with each layer `replace` returns a layer for replaced by it (see module doc).

    A clone of a compiled model is compiled the same way (a fresh optimizer) unless
    `compile_clone` is False; a model changed in place keeps its compile state.
    """
    rebuilder = _Rebuilder(replace)
    if not _is_graph(model):
        rebuilder.in_place(model)
        return model
    compiled = getattr(model, "compiled", False)
    if compiled and not compile_clone:
        model.compiled = False  # clone_model compiles the clone of a compiled model
    try:
        return rebuilder.clone(model)
    finally:
        if compiled:
            model.compiled = True
