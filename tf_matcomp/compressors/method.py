"""`Method`: one compression method as the rest of tf_matcomp sees it (see `registry`)."""

import dataclasses
from typing import Mapping, Optional, Sequence, Tuple, Union

from tf_matcomp.hparams import HParams

# Op-spec hparams every compressor spec takes over from the op spec.
SHARED_HPARAMS = ("rank", "block_size", "pruning_fraction", "use_tpu")
# Which factor each CompressionOp attribute names, unless a method says otherwise.
DEFAULT_FACTOR_ATTRIBUTES = {"b_matrix_tfvar": 0, "c_matrix_tfvar": 1}


def factor_index(factor: Union[int, str], factor_names: Sequence[str], count: int) -> Optional[int]:
    """The index of `factor` (an index, or a factor's name for a method whose factors depend
    on its spec) among `count` factors named `factor_names`; None when there is no such one."""
    if isinstance(factor, str):
        return list(factor_names).index(factor) if factor in factor_names else None
    return factor if factor < count else None


@dataclasses.dataclass(frozen=True)
class Method:
    """A compression method: its compressor, its compressed form and how specs map onto them.

    Attributes:
      name: the short name (CLI `--method`, demo rows, reports).
      label: the human-readable name.
      options: the graph_compression `compression_option` numbers that select it.
      compressor_class: a `MatrixCompressorInterface` subclass.
      form_class: its `CompressedForm` subclass (its `kind` is saved in stripped configs).
      compressor_overrides: compressor hparams the method fixes (e.g. untrainable signs).
      factor_attributes: CompressionOp attribute name → factor index, or factor name where
        the factors present depend on the spec (graph_compression's `b_matrix_tfvar`,
        `c_matrix_tfvar`, ...; see `factor_index`).
      op_hparams: op-spec hparams of this method its compressor spec takes over besides
        `SHARED_HPARAMS` (e.g. block-diagonal's `block_compression_factor`).
      deployed_form_classes: other `CompressedForm` subclasses its form's `deployed_form`
        returns (pruning + k-means: the packed form), so that stripped configs of their
        `kind` load too.
    """

    name: str
    label: str
    options: Tuple[int, ...]
    compressor_class: type
    form_class: type
    compressor_overrides: Mapping[str, object] = dataclasses.field(default_factory=dict)
    factor_attributes: Mapping[str, Union[int, str]] = dataclasses.field(
        default_factory=lambda: dict(DEFAULT_FACTOR_ATTRIBUTES)
    )
    op_hparams: Tuple[str, ...] = ()
    deployed_form_classes: Tuple[type, ...] = ()

    @property
    def option(self) -> int:
        """The option number that names this method in specs this package writes."""
        return self.options[-1]

    def compressor_spec(self, op_spec: HParams) -> HParams:
        """The compressor hparams for an op spec: defaults, the shared hparams and the
        method's own `op_hparams` (where the op spec has them), the overrides."""
        spec = self.compressor_class.get_default_hparams()
        for key in SHARED_HPARAMS + tuple(self.op_hparams):
            if key in op_spec:
                spec.set_hparam(key, op_spec.get(key))
        for key, value in self.compressor_overrides.items():
            spec.set_hparam(key, value)
        return spec

    def spec_for_ratio(self, op_spec: HParams, shape, ratio: float) -> HParams:
        """A copy of `op_spec` whose method hparams (the compressor's `hparams_for_ratio`)
        make a matrix of `shape` about `ratio` times smaller than dense.

        Raises:
          ValueError: `ratio` is not a number > 0.
        """
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not ratio > 0:
            raise ValueError(f"compression_ratio must be a number > 0, got {ratio!r}")
        overrides = self.compressor_class.hparams_for_ratio(
            shape, float(ratio), self.compressor_spec(op_spec)
        )
        spec = op_spec.copy()
        for key, value in overrides.items():
            spec.set_hparam(key, value)
        return spec

    def make_compressor(self, op_spec: HParams):
        """A compressor for a validated op spec (the op spec is not modified)."""
        return self.compressor_class(spec=self.compressor_spec(op_spec))
