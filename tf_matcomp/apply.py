"""`tf_matcomp.apply_compression(weight, spec=..., scope=..., global_step=None)` for models."""

from typing import Optional, Union

import tensorflow as tf

from tf_matcomp import compression_op
from tf_matcomp import compression_wrapper
from tf_matcomp.hparams import HParams

# The ApplyCompression a weight was first compressed with lives on the weight object itself
# (this attribute), so state follows the object, never a name two models could share.
_ATTRIBUTE = "_tf_matcomp_apply_compression"

SpecLike = Union[None, str, dict, HParams, compression_op.ApplyCompression]


def make_spec(spec: SpecLike = None) -> HParams:
    """An op spec from None (defaults), an "a=1,b=2" string, a dict or an HParams (copied)."""
    if isinstance(spec, HParams):
        return spec.copy()
    defaults = compression_op.CompressionOp.get_default_hparams()
    if spec is None:
        return defaults
    if isinstance(spec, str):
        return defaults.parse(spec)
    if isinstance(spec, dict):
        return defaults.override_from_dict(spec)
    raise ValueError(
        f"spec must be an HParams, a 'name=value,...' string, a dict or an "
        f"ApplyCompression, got {type(spec).__name__}"
    )


def get_compression(weight) -> Optional[compression_op.ApplyCompression]:
    """The ApplyCompression that `apply_compression` attached to `weight`, or None."""
    return getattr(weight, _ATTRIBUTE, None)


def apply_compression(
    weight, spec: SpecLike = None, scope="default_scope", global_step=None
) -> tf.Tensor:
    """Returns the tensor to use instead of `weight`: alpha·A + (1 − alpha)·Â.

    The first call for a weight builds its compression state (an ApplyCompression from `spec`,
    or `spec` itself when it is an ApplyCompression) and keeps it on the weight object; later
    calls return a fresh weight tensor from the same state, so eager code may call it every
    step. Drive updates through `get_compression(weight)` (`update(step)`, `all_update_op()`,
    `run_update_step(...)`).

    Args:
      weight: a 2-D floating variable.
      spec: op hparams (HParams, "name=value,..." string, dict, None for defaults) or an
        ApplyCompression to use.
      scope: name scope of the new variables.
      global_step: step for updates that are not given one.

    Raises:
      ValueError: an invalid spec, a weight that is not 2-D, or a second call whose spec
        differs from the first one's.
    """
    attached = get_compression(weight)
    if attached is None:
        if isinstance(spec, compression_op.ApplyCompression):
            attached = spec
        else:
            attached = compression_wrapper.get_apply_compression(
                make_spec(spec), global_step=global_step
            )
        weighted = attached.apply_compression(weight, scope=scope)
        try:
            setattr(weight, _ATTRIBUTE, attached)
        except AttributeError as error:  # pragma: no cover - objects without a __dict__
            raise ValueError(
                f"cannot attach compression state to {type(weight).__name__}; "
                f"use compression_wrapper.get_apply_compression"
            ) from error
        return weighted
    if isinstance(spec, compression_op.ApplyCompression):
        if spec is not attached:
            raise ValueError("this weight is already compressed by another ApplyCompression")
    elif spec is not None and make_spec(spec).values() != attached.get_spec().values():
        raise ValueError("this weight is already compressed with a different spec")
    return attached.apply_compression(weight, scope=scope)
