"""One pipeline pass: the validation split is carved from training, trials score on it."""

import pytest

from kopt.distribute import make_strategy
from kopt.pipeline import Recipe
from kopt.pipeline.execution import execute
from kopt.pipeline.execution import load_data


def test_validation_split_comes_out_of_the_training_examples():
    train, validation, test, info = load_data(Recipe(validation_split=0.25, batch_size=32))
    counts = [sum(int(x.shape[0]) for x, _ in data) for data in (train, validation, test)]
    assert counts[0] + counts[1] == info.train_examples and counts[1] == round(info.train_examples * 0.25)
    assert counts[2] == info.test_examples
    assert load_data(Recipe())[1] is None


def test_a_validation_pass_needs_a_split(tmp_path):
    with pytest.raises(ValueError, match="needs validation_split above 0"):
        execute(Recipe(validation_split=0.0), [], make_strategy("default"), export_dir=str(tmp_path),
                evaluation="validation")
