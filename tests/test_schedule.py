"""The alpha schedule: firing steps, alpha staircase, validation; Python rule == TF rule."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

import tf_matcomp
from tf_matcomp.schedule import AlphaSchedule


def test_first_firing_with_begin_0_and_frequency_10_is_step_9():
    assert AlphaSchedule(0, -1, 10, 0.01).firing_steps(range(40)) == [9, 19, 29, 39]


def test_begin_and_end_are_inclusive():
    schedule = AlphaSchedule(begin_step=5, end_step=20, frequency=5, alpha_decrement=0.1)
    assert schedule.firing_steps(range(40)) == [5, 10, 15, 20]


def test_end_minus_one_never_stops():
    schedule = AlphaSchedule(begin_step=0, end_step=-1, frequency=1000, alpha_decrement=0.5)
    assert schedule.firing_steps(range(0, 10**7, 250)) == list(range(1000, 10**7, 1000))


def test_alpha_staircase_is_exact_and_reaches_zero():
    schedule = AlphaSchedule(alpha_decrement=0.01)
    assert [schedule.alpha_after(c) for c in (0, 1, 2, 50)] == [1.0, 0.99, 0.98, 0.5]
    assert schedule.alpha_after(100) == 0.0 and schedule.alpha_after(150) == 0.0
    third = AlphaSchedule(alpha_decrement=1 / 3)
    assert third.alpha_after(3) == 0.0
    counts = tf.constant([0, 1, 99, 100, 101], tf.int64)
    np.testing.assert_array_equal(
        schedule.alpha_after_tf(counts).numpy(), np.float32([1.0, 0.99, 0.01, 0.0, 0.0])
    )


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(begin_step=-1), "begin_compression_step"),
        (dict(begin_step=10, end_step=5), "end_compression_step"),
        (dict(end_step=-2), "end_compression_step"),
        (dict(frequency=0), "compression_frequency"),
        (dict(alpha_decrement=0.0), "alpha_decrement_value"),
        (dict(alpha_decrement=1.5), "alpha_decrement_value"),
        (dict(alpha_decrement=float("nan")), "alpha_decrement_value"),
        (dict(frequency=2.5), "compression_frequency"),
    ],
)
def test_invalid_schedules_name_the_hparam(kwargs, name):
    with pytest.raises(ValueError, match=name):
        AlphaSchedule(**kwargs)


def test_end_equal_to_begin_is_allowed():
    assert AlphaSchedule(3, 3, 1, 1.0).firing_steps(range(10)) == [3]


@pytest.mark.parametrize("begin, end, frequency", [(0, -1, 10), (5, 30, 3), (2, 2, 1)])
def test_tf_rule_matches_python_rule(begin, end, frequency):
    schedule = AlphaSchedule(begin, end, frequency, 0.1)
    steps, lasts = zip(*itertools.product(range(-1, 40), range(-1, 40)))
    expected = [schedule.should_fire(s, l) for s, l in zip(steps, lasts)]
    got = tf.function(schedule.should_fire_tf)(
        tf.constant(steps, tf.int64), tf.constant(lasts, tf.int64)
    )
    np.testing.assert_array_equal(got.numpy(), expected)


@pytest.mark.parametrize("path", ["tf", "python"])
def test_op_alpha_staircase_at_exact_steps(path):
    spec = (
        "begin_compression_step=3,end_compression_step=14,compression_frequency=4,"
        "alpha_decrement_value=0.25,rank=200,update_option=2"
    )
    weight = tf.Variable(np.random.default_rng(0).standard_normal((6, 4)), dtype=tf.float32)
    tf_matcomp.apply_compression(weight, spec=spec, scope="staircase")
    op = tf_matcomp.get_compression(weight).get_last_compression_op()
    alphas, lasts = [], []
    for step in range(20):
        if path == "tf":
            op.update(step)
        else:
            op.run_update_step(step_number=step)
        alphas.append(float(op.alpha.numpy()))
        lasts.append(int(op.last_alpha_update_step.numpy()))
    # fires at 3, 7, 11 (15 is past the end)
    assert alphas == [1.0] * 3 + [0.75] * 4 + [0.5] * 4 + [0.25] * 9
    assert lasts == [-1] * 3 + [3] * 4 + [7] * 4 + [11] * 9
