"""An HParams-like specification object (the successor of `tf.contrib.training.HParams`).

    spec = HParams(name="model_compression", rank=7, use_tpu=False)
    spec.parse("rank=200,use_tpu=true")      # returns spec, updated in place
    spec.set_hparam("rank", 400); spec.rank  # 400
    spec.add_hparam("extra", 1.5)
    spec.values(); spec.to_json()

Each hparam keeps the type of its first value (int, float, bool, str, or a list of one of
these). `parse`, `set_hparam`, attribute assignment and `override_from_dict` convert a new value
to that type where the conversion loses nothing (an int for a float hparam, "true" for a bool);
an unknown name or a value that does not fit raises ValueError naming the hparam.
"""

import copy
import json
import re
from typing import Any, Dict, List, Optional, Tuple

_SCALAR_TYPES = (bool, int, float, str)
_TRUE = ("true", "1")
_FALSE = ("false", "0")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _type_of(name: str, value: Any) -> Tuple[type, bool]:
    """(element type, is_list) of a new hparam's value."""
    if isinstance(value, (list, tuple)):
        element_types = {type(v) for v in value}
        if not element_types:
            return str, True  # an empty list: str elements, as a list of names usually is
        if len(element_types) == 1 and next(iter(element_types)) in _SCALAR_TYPES:
            return next(iter(element_types)), True
        if element_types <= {int, float}:
            return float, True
        raise ValueError(
            f"hparam {name!r}: a list must hold values of one type among bool, "
            f"int, float, str; got {value!r}"
        )
    if type(value) in _SCALAR_TYPES:
        return type(value), False
    if value is None:
        return type(None), False
    raise ValueError(
        f"hparam {name!r}: unsupported type {type(value).__name__} "
        f"(bool, int, float, str or a list of one of these)"
    )


def _convert_scalar(name: str, kind: type, value: Any) -> Any:
    """Converts `value` to `kind` where nothing is lost, else raises ValueError naming `name`."""

    def fail():
        return ValueError(
            f"hparam {name!r} expects a value of type {kind.__name__}, "
            f"got {value!r} ({type(value).__name__})"
        )

    if kind is type(None):
        return value
    if isinstance(value, str) and kind is not str:
        text = value.strip()
        if kind is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise fail()
        try:
            if kind is int:
                return int(text, 0) if text.lower().startswith(("0x", "-0x")) else int(text)
            return float(text)
        except ValueError:
            raise fail() from None
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise fail()
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            try:  # numpy integers
                import numpy as np

                if isinstance(value, np.integer):
                    return int(value)
            except ImportError:  # pragma: no cover
                pass
            raise fail()
        return int(value)
    if kind is float:
        if isinstance(value, bool):
            raise fail()
        if isinstance(value, (int, float)):
            return float(value)
        try:
            import numpy as np

            if isinstance(value, (np.integer, np.floating)):
                return float(value)
        except ImportError:  # pragma: no cover
            pass
        raise fail()
    if kind is str:
        if isinstance(value, str):
            return value
        raise fail()
    raise fail()  # pragma: no cover


def _split_top_level(text: str) -> List[str]:
    """Splits "a=1,b=[x,y],c=z" on the commas outside brackets."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced ']' in hparams string {text!r}")
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth:
        raise ValueError(f"unbalanced '[' in hparams string {text!r}")
    parts.append("".join(current))
    return [part for part in (p.strip() for p in parts) if part]


class HParams:
    """Named, typed hyperparameters with `parse`, `set_hparam`, `add_hparam`, `values`, `to_json`.

    Attribute access reads (`spec.rank`) and writes (`spec.rank = 3`, type-checked) hparams.
    `copy.deepcopy(spec)` or `spec.copy()` gives an independent spec.
    """

    def __init__(self, **kwargs: Any) -> None:
        object.__setattr__(self, "_types", {})
        object.__setattr__(self, "_values", {})
        for name, value in kwargs.items():
            self.add_hparam(name, value)

    # --- adding, setting, removing -------------------------------------------------------
    def add_hparam(self, name: str, value: Any) -> None:
        """Adds a new hparam; ValueError if the name exists, is not an identifier or clashes."""
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"hparam name {name!r} is not a valid identifier")
        if name in self._values:
            raise ValueError(f"hparam {name!r} already exists")
        if hasattr(type(self), name):
            raise ValueError(f"hparam name {name!r} clashes with an HParams method")
        kind, is_list = _type_of(name, value)
        self._types[name] = (kind, is_list)
        self._values[name] = list(value) if is_list else value

    def set_hparam(self, name: str, value: Any) -> None:
        """Sets an existing hparam, converting to its type; ValueError if unknown or mistyped."""
        if name not in self._values:
            raise ValueError(f"unknown hparam {name!r}; known: {', '.join(sorted(self._values))}")
        self._values[name] = self._convert(name, value)

    def del_hparam(self, name: str) -> None:
        """Removes an hparam (no error if absent)."""
        self._values.pop(name, None)
        self._types.pop(name, None)

    def _convert(self, name: str, value: Any) -> Any:
        kind, is_list = self._types[name]
        if is_list:
            if not isinstance(value, (list, tuple)):
                raise ValueError(
                    f"hparam {name!r} expects a list of {kind.__name__}, got {value!r}"
                )
            return [_convert_scalar(name, kind, v) for v in value]
        if isinstance(value, (list, tuple)):
            raise ValueError(f"hparam {name!r} expects a single {kind.__name__}, got a list")
        if kind is type(None):  # an hparam added as None takes any scalar
            return value
        return _convert_scalar(name, kind, value)

    # --- parsing -------------------------------------------------------------------------
    def parse(self, values: str) -> "HParams":
        """Updates hparams from "name=value,name=[v1,v2],..." and returns self.

        Raises ValueError for a malformed item, an unknown name or a value of the wrong type.
        """
        if values is None:
            return self
        if not isinstance(values, str):
            raise ValueError(f"parse expects a string, got {type(values).__name__}")
        updates: Dict[str, Any] = {}
        for item in _split_top_level(values):
            if "=" not in item:
                raise ValueError(f"malformed hparam {item!r}: expected name=value")
            name, text = (part.strip() for part in item.split("=", 1))
            if name not in self._values:
                raise ValueError(f"unknown hparam {name!r} in {values!r}")
            if name in updates:
                raise ValueError(f"hparam {name!r} given twice in {values!r}")
            kind, is_list = self._types[name]
            if is_list:
                if not (text.startswith("[") and text.endswith("]")):
                    text = f"[{text}]"
                inner = text[1:-1].strip()
                items = [t.strip() for t in inner.split(",")] if inner else []
                updates[name] = [_convert_scalar(name, kind, t) for t in items]
            elif kind is type(None):
                updates[name] = text
            else:
                updates[name] = _convert_scalar(name, kind, text)
        self._values.update(updates)
        return self

    def override_from_dict(self, values_dict: Dict[str, Any]) -> "HParams":
        """Sets each name=value of the dict (all checked before any is set); returns self."""
        converted = {}
        for name, value in values_dict.items():
            if name not in self._values:
                raise ValueError(f"unknown hparam {name!r}")
            converted[name] = self._convert(name, value)
        self._values.update(converted)
        return self

    def parse_json(self, values_json: str) -> "HParams":
        """Updates hparams from a JSON object string; returns self."""
        return self.override_from_dict(json.loads(values_json))

    # --- reading -------------------------------------------------------------------------
    def values(self) -> Dict[str, Any]:
        """A new dict name → value."""
        return {name: copy.copy(value) for name, value in self._values.items()}

    def get(self, key: str, default: Any = None) -> Any:
        """The hparam's value, or `default` when it does not exist."""
        return copy.copy(self._values.get(key, default))

    def to_json(
        self, indent: Optional[int] = None, separators=None, sort_keys: bool = False
    ) -> str:
        """The values as a JSON object string."""
        return json.dumps(self._values, indent=indent, separators=separators, sort_keys=sort_keys)

    def copy(self) -> "HParams":
        """An independent copy."""
        return copy.deepcopy(self)

    def __contains__(self, key: str) -> bool:
        return key in self._values

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("_values")
        if values is not None and name in values:
            return values[name]
        raise AttributeError(f"HParams has no hparam or attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._values:
            self._values[name] = self._convert(name, value)
        else:
            raise ValueError(f"unknown hparam {name!r}: use add_hparam to add one")

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, HParams) and self._values == other._values

    __hash__ = None

    def __deepcopy__(self, memo) -> "HParams":
        new = HParams()
        object.__setattr__(new, "_types", dict(self._types))
        object.__setattr__(new, "_values", copy.deepcopy(self._values, memo))
        return new

    def __getstate__(self):
        return {"_types": self._types, "_values": self._values}

    def __setstate__(self, state) -> None:
        object.__setattr__(self, "_types", state["_types"])
        object.__setattr__(self, "_values", state["_values"])

    def __repr__(self) -> str:
        return f"HParams({', '.join(f'{k}={v!r}' for k, v in self._values.items())})"

    def __str__(self) -> str:
        return self.__repr__()
