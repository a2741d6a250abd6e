"""tf.summary scalars of a compression op: alpha, last update step, skipped updates, norms,
reconstruction error.

In a TF1-style graph the scalars are `tf.compat.v1.summary.scalar` ops (collected in
GraphKeys.SUMMARIES, merged by `tf.compat.v1.summary.merge_all()`); eagerly and inside
`tf.function` they are TF2 scalar summaries (`tf.summary.write` with TensorBoard's scalar-plugin
metadata, as `tf.summary.scalar` writes, but without needing the tensorboard package) written to
the default writer (a no-op without one), at `step`, else `tf.summary.experimental.get_step()`,
else the op's global step.
"""

from typing import Dict

import tensorflow as tf


def compression_scalars(op) -> Dict[str, tf.Tensor]:
    """name → scalar tensor for one built CompressionOp (names prefixed by its scope)."""
    prefix = op.scope_name
    scalars = {
        f"{prefix}/alpha": tf.convert_to_tensor(op.alpha),
        f"{prefix}/last_alpha_update_step": tf.convert_to_tensor(op.last_alpha_update_step),
        f"{prefix}/skipped_update_count": tf.convert_to_tensor(op.skipped_update_count),
        f"{prefix}/a_matrix_norm": tf.norm(
            tf.cast(tf.convert_to_tensor(op.a_matrix_tfvar), tf.float32)
        ),
        f"{prefix}/reconstruction_error": tf.cast(op.reconstruction_error(), tf.float32),
    }
    for spec, variable in zip(op.factor_specs, op.factor_variables):
        if spec.dtype.is_floating:
            scalars[f"{prefix}/{spec.name}_norm"] = tf.norm(
                tf.cast(tf.convert_to_tensor(variable), tf.float32)
            )
    return scalars


def _tf2_step(op, step):
    if step is not None:
        return tf.cast(step, tf.int64)
    step = tf.summary.experimental.get_step()
    if step is not None:
        return step
    global_step = getattr(op, "_global_step", None)
    if global_step is None:
        raise ValueError(
            "summaries need a step: pass step=, set "
            "tf.summary.experimental.set_step, or give the op a global_step"
        )
    return tf.cast(global_step, tf.int64)


def write_compression_summaries(op, step=None) -> list:
    """Writes (TF2) or adds (TF1 graph) the op's scalars; returns the summary ops/results."""
    in_graph = not tf.executing_eagerly() and not tf.inside_function()
    if in_graph:
        return [
            tf.compat.v1.summary.scalar(name, value)
            for name, value in compression_scalars(op).items()
        ]
    if tf.executing_eagerly() and not bool(tf.summary.should_record_summaries()):
        return []  # no default writer (or recording off): skip computing the scalars
    step = _tf2_step(op, step)
    return [
        tf.summary.write(name, tf.cast(value, tf.float32), step=step, metadata=_scalar_metadata())
        for name, value in compression_scalars(op).items()
    ]


def _scalar_metadata():
    """TensorBoard's scalar-plugin metadata: what `tf.summary.scalar` writes, without needing
    the tensorboard package (tf.summary.scalar raises when it is not installed)."""
    return tf.compat.v1.SummaryMetadata(
        plugin_data=tf.compat.v1.SummaryMetadata.PluginData(plugin_name="scalars")
    )
