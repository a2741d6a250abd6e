"""HParams: parse, set/add, values, to_json, type checks; the peer's op-spec defaults."""

import json

import pytest

from tf_matcomp import compression_op
from tf_matcomp.compressors import base
from tf_matcomp.hparams import HParams

PEER_OP_DEFAULTS = dict(
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
    begin_pruning_step=0,
    end_pruning_step=-1,
    weight_sparsity_map=[""],
    block_dims_map=[""],
    threshold_decay=0.0,
    pruning_frequency=10,
    nbins=256,
    block_height=1,
    block_width=1,
    block_pooling_function="AVG",
    initial_sparsity=0.0,
    target_sparsity=0.5,
    sparsity_function_begin_step=0,
    sparsity_function_end_step=100,
    sparsity_function_exponent=3.0,
    gradient_decay_rate=0.99,
    prune_option="weight",
)

PEER_COMPRESSOR_DEFAULTS = dict(
    name="model_compression",
    rank=100,
    num_rows=10,
    num_cols=10,
    use_tpu=False,
    compressor_option=0,
    is_b_matrix_trainable=True,
    is_c_matrix_trainable=True,
    is_d_matrix_trainable=True,
    is_c_matrix_present=True,
    block_size=1,
    pruning_fraction=0.0,
    use_lsh=False,
)


def test_op_spec_has_every_peer_hparam_with_its_default():
    values = compression_op.CompressionOp.get_default_hparams().values()
    for key, value in PEER_OP_DEFAULTS.items():
        assert values[key] == value and type(values[key]) is type(value), key


def test_compressor_spec_defaults_match_the_peer():
    values = base.compressor_hparams().values()
    assert {k: values[k] for k in PEER_COMPRESSOR_DEFAULTS} == PEER_COMPRESSOR_DEFAULTS


def test_parse_converts_to_each_hparams_type_and_returns_self():
    spec = compression_op.CompressionOp.get_default_hparams()
    result = spec.parse(
        "name=cifar10_compression, begin_compression_step=1000,"
        "alpha_decrement_value=1,use_tpu=True,weight_sparsity_map=[a:0.5,b:0.7]"
    )
    assert result is spec
    assert spec.name == "cifar10_compression" and spec.begin_compression_step == 1000
    assert spec.alpha_decrement_value == 1.0 and isinstance(spec.alpha_decrement_value, float)
    assert spec.use_tpu is True
    assert spec.weight_sparsity_map == ["a:0.5", "b:0.7"]
    assert spec.parse("use_tpu=false,rank=0x10").use_tpu is False and spec.rank == 16


@pytest.mark.parametrize(
    "text, name",
    [
        ("rank=abc", "rank"),
        ("rank=1.5", "rank"),
        ("use_tpu=maybe", "use_tpu"),
        ("alpha_decrement_value=x", "alpha_decrement_value"),
        ("no_such_key=1", "no_such_key"),
    ],
)
def test_parse_rejects_unknown_keys_and_wrong_types_naming_them(text, name):
    spec = compression_op.CompressionOp.get_default_hparams()
    with pytest.raises(ValueError, match=name):
        spec.parse(text)


@pytest.mark.parametrize("text", ["rank", "rank=1,rank=2", "weight_sparsity_map=[a"])
def test_parse_rejects_malformed_strings(text):
    with pytest.raises(ValueError):
        compression_op.CompressionOp.get_default_hparams().parse(text)


def test_set_add_values_to_json_and_attribute_assignment():
    spec = HParams(a=1, b="x", c=0.5, d=True)
    spec.set_hparam("a", 3)
    spec.c = 2  # int accepted for a float
    spec.add_hparam("e", [1, 2])
    assert spec.values() == {"a": 3, "b": "x", "c": 2.0, "d": True, "e": [1, 2]}
    assert json.loads(spec.to_json()) == spec.values()
    assert "e" in spec and "f" not in spec and spec.get("f", 7) == 7
    with pytest.raises(ValueError, match="'a'"):
        spec.set_hparam("a", "three")
    with pytest.raises(ValueError, match="'d'"):
        spec.d = 1  # an int is not a bool
    with pytest.raises(ValueError, match="'zz'"):
        spec.set_hparam("zz", 1)
    with pytest.raises(ValueError, match="'zz'"):
        spec.zz = 1
    with pytest.raises(ValueError, match="already exists"):
        spec.add_hparam("a", 2)
    with pytest.raises(ValueError, match="clashes"):
        spec.add_hparam("parse", 2)
    with pytest.raises(AttributeError):
        _ = spec.missing


def test_copies_are_independent_and_values_returns_a_copy():
    spec = HParams(a=[1], b=2)
    clone = spec.copy()
    clone.b = 5
    clone.a.append(3)
    spec.values()["a"].append(9)
    assert spec.values() == {"a": [1], "b": 2}
    assert clone.values() == {"a": [1, 3], "b": 5}
    assert clone != spec and spec == HParams(a=[1], b=2)


def test_override_from_dict_is_all_or_nothing():
    spec = HParams(a=1, b=2)
    with pytest.raises(ValueError, match="'b'"):
        spec.override_from_dict({"a": 5, "b": "bad"})
    assert spec.values() == {"a": 1, "b": 2}
    assert spec.parse_json('{"a": 4}').a == 4
