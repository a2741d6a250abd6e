"""The op spec: graph_compression's hparams with their defaults, and their validation."""

from tf_matcomp import schedule as schedule_lib
from tf_matcomp.compressors import base as compressor_base
from tf_matcomp.compressors import magnitude_pruning
from tf_matcomp.compressors import registry
from tf_matcomp.hparams import HParams

SUPPORTED_COMPRESSION_OPTIONS = registry.SUPPORTED_COMPRESSION_OPTIONS
UPDATE_TF, UPDATE_PYTHON, UPDATE_BOTH, UPDATE_NONE = 0, 1, 2, 3
UPDATE_OPTIONS = (UPDATE_TF, UPDATE_PYTHON, UPDATE_BOTH, UPDATE_NONE)
# Update options whose updates run as TF ops, and those run from Python.
TF_UPDATE_OPTIONS = (UPDATE_TF, UPDATE_BOTH)
PYTHON_UPDATE_OPTIONS = (UPDATE_PYTHON, UPDATE_BOTH)


def default_op_hparams() -> HParams:
    """The op spec with graph_compression's defaults (documented at
    `CompressionOp.get_default_hparams`)."""
    return HParams(
        name="model_compression",
        alpha_decrement_value=0.01,
        begin_compression_step=0,
        end_compression_step=-1,
        compression_frequency=10,
        use_tpu=False,
        compression_option=0,
        rank=7,
        update_option=0,
        run_update_interval_check=1,
        block_size=1,
        pruning_fraction=0.0,
        # Pruning schedule of option 8 (magnitude pruning + k-means).
        **magnitude_pruning.DEFAULT_PRUNING_HPARAMS,
        # Newer upstream keys (option 9 and later), kept for compatibility.
        add_summary=True,
        use_collection=False,
        do_transpose=False,
        compress_input=True,
        input_compression_factor=1,
        input_block_size=1,
        compress_output=False,
        output_compression_factor=1,
        output_block_size=1,
        block_method="loop",
        block_compression_factor=1,
        compression_factor=1,
        num_bases=1,
        # tf_matcomp's own: the kind of simhash projection R ("gaussian" or "hadamard").
        projection="gaussian",
    )


def validate_spec(spec: HParams) -> schedule_lib.AlphaSchedule:
    """Checks an op spec; returns its schedule. ValueError names the hparam and the rule."""
    for key in ("rank", "compression_option", "update_option"):
        if key not in spec:
            raise ValueError(f"the compression spec has no hparam {key!r}")
    registry.method_for_option(spec.compression_option)
    if spec.update_option not in UPDATE_OPTIONS:
        raise ValueError(
            f"update_option must be one of {UPDATE_OPTIONS} (0 TF ops, 1 Python, "
            f"2 both, 3 none), got {spec.update_option!r}"
        )
    compressor_base.require_positive_int(spec.rank, "rank")
    if "block_size" in spec:
        compressor_base.require_positive_int(spec.block_size, "block_size")
    return schedule_lib.AlphaSchedule.from_spec(spec)
