"""Tests for kopt.pruning.schedules: values, pruning turns, validation, lookup."""

import re

import keras
import numpy as np
import pytest

from kopt.pruning import schedules
from kopt.pruning.schedules import ConstantSparsity
from kopt.pruning.schedules import PolynomialDecay
from kopt.pruning.schedules import PruningSchedule
from kopt.testing import run_serialization_test


def _evaluate(schedule, step):
    should_prune, sparsity = schedule(step)
    return bool(keras.ops.convert_to_numpy(should_prune)), float(keras.ops.convert_to_numpy(sparsity))


def test_constant_sparsity_prunes_every_frequency_steps_in_range():
    schedule = ConstantSparsity(0.6, begin_step=10, end_step=50, frequency=20)
    turns = [step for step in range(0, 80) if _evaluate(schedule, step)[0]]
    assert turns == [10, 30, 50]
    assert _evaluate(schedule, 30)[1] == pytest.approx(0.6)


def test_constant_sparsity_without_end_keeps_pruning():
    schedule = ConstantSparsity(0.5, begin_step=0, frequency=100)
    assert [_evaluate(schedule, step)[0] for step in (0, 99, 100, 100_000)] == [True, False, True, True]


def test_polynomial_decay_follows_zhu_and_gupta():
    schedule = PolynomialDecay(0.1, 0.9, begin_step=100, end_step=300, power=3, frequency=50)
    for step in (0, 100, 150, 200, 300, 1000):
        progress = min(max((step - 100) / 200, 0.0), 1.0)
        expected = 0.9 + (0.1 - 0.9) * (1 - progress) ** 3
        assert _evaluate(schedule, step)[1] == pytest.approx(expected, abs=1e-6)
    turns = [step for step in range(0, 400) if _evaluate(schedule, step)[0]]
    assert turns == [100, 150, 200, 250, 300]


def test_end_step_is_a_pruning_turn_even_off_frequency():
    # tfmot would skip step 95 (95 % 10 != 0) and never reach the final sparsity.
    schedule = PolynomialDecay(0.0, 0.8, begin_step=0, end_step=95, frequency=10)
    assert _evaluate(schedule, 95) == (True, pytest.approx(0.8))
    assert not _evaluate(schedule, 100)[0]


def test_schedule_accepts_tensor_steps():
    schedule = PolynomialDecay(0.0, 0.5, begin_step=0, end_step=10, frequency=5)
    should_prune, sparsity = schedule(keras.ops.convert_to_tensor(10, "int64"))
    assert bool(keras.ops.convert_to_numpy(should_prune))
    assert keras.ops.convert_to_numpy(sparsity).dtype == np.float32


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: ConstantSparsity(1.0, 0), "target_sparsity=1.0"),
        (lambda: ConstantSparsity(-0.1, 0), "target_sparsity=-0.1"),
        (lambda: ConstantSparsity(0.5, -1), "begin_step=-1"),
        (lambda: ConstantSparsity(0.5, 10, end_step=5), "end_step=5"),
        (lambda: ConstantSparsity(0.5, 0, frequency=0), "frequency=0"),
        (lambda: ConstantSparsity(0.5, 1.5), "begin_step=1.5"),
        (lambda: PolynomialDecay(0.0, 1.5, 0, 10), "final_sparsity=1.5"),
        (lambda: PolynomialDecay("0", 0.5, 0, 10), "initial_sparsity='0'"),
        (lambda: PolynomialDecay(0.0, 0.5, 0, -1), "end_step=-1"),
        (lambda: PolynomialDecay(0.0, 0.5, 0, 10, power=0), "power=0"),
        (lambda: PolynomialDecay(0.0, 0.5, 0, 10, frequency=True), "frequency=True"),
    ],
)
def test_bad_arguments_name_the_argument_and_value(make, message):
    with pytest.raises(ValueError, match=re.escape(f"Received: {message}")):
        make()


def test_schedules_serialize():
    run_serialization_test(
        ConstantSparsity(0.7, 5, end_step=50, frequency=5),
        init_kwargs={"target_sparsity": 0.7, "begin_step": 5, "end_step": 50, "frequency": 5},
    )
    restored = run_serialization_test(
        PolynomialDecay(0.1, 0.8, 0, 100, power=2, frequency=10),
        init_kwargs={"initial_sparsity": 0.1, "final_sparsity": 0.8, "begin_step": 0, "end_step": 100, "power": 2},
    )
    assert _evaluate(restored, 50)[1] == pytest.approx(0.8 - 0.7 * 0.25)


def test_get_resolves_names_dicts_and_instances():
    instance = ConstantSparsity(0.3, 0)
    assert schedules.get(instance) is instance
    assert schedules.get(None) is None
    assert isinstance(schedules.get("constant_sparsity"), ConstantSparsity)
    built = schedules.get("polynomial_decay", initial_sparsity=0.0, final_sparsity=0.5, begin_step=0, end_step=10)
    assert isinstance(built, PolynomialDecay) and built.final_sparsity == 0.5
    from_dict = schedules.get({"class_name": "PolynomialDecay", "config": built.get_config()})
    assert from_dict.get_config() == built.get_config()
    from_keras = schedules.get(keras.saving.serialize_keras_object(built))
    assert from_keras.get_config() == built.get_config()
    assert schedules.get("kopt>ConstantSparsity").target_sparsity == 0.5


def test_get_errors_are_explicit():
    with pytest.raises(ValueError, match="Unknown pruning schedule.*'cosine'"):
        schedules.get("cosine")
    with pytest.raises(ValueError, match="polynomial_decay"):
        schedules.get("polynomial_decay")  # needs its arguments
    with pytest.raises(ValueError, match="only with a schedule name"):
        schedules.get(ConstantSparsity(), begin_step=3)
    with pytest.raises(ValueError, match="identifier=3"):
        schedules.get(3)


def test_custom_schedule_subclass_is_found_and_serialized():
    @keras.saving.register_keras_serializable(package="kopt_schedule_test")
    class Halfway(PruningSchedule):
        def __init__(self, end_step=10):
            self.begin_step, self.end_step, self.frequency = 0, end_step, 1

        def __call__(self, step):
            return self._should_prune_in_step(step, 0, self.end_step, 1), keras.ops.convert_to_tensor(0.5)

        def get_config(self):
            return {"end_step": self.end_step}

    run_serialization_test(Halfway(7), init_kwargs={"end_step": 7}, required_package="kopt_schedule_test")
    assert schedules.get("kopt_schedule_test>Halfway", end_step=3).end_step == 3
    assert "Halfway(end_step=3)" == repr(Halfway(3))
    with pytest.raises(TypeError):
        PruningSchedule()
