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
        execute(
            Recipe(validation_split=0.0),
            [],
            make_strategy("default"),
            export_dir=str(tmp_path),
            evaluation="validation",
        )


def test_an_export_failure_after_training_says_where_the_trained_model_is(tmp_path, monkeypatch):
    import os

    import tflite_export
    from kopt.pipeline import model_metrics

    real_measure = model_metrics.measure

    def failing_optimized_export(model, test, tflite_path, **kwargs):
        if os.path.basename(tflite_path) == "optimized.tflite":
            raise tflite_export.ConversionError("TFLite conversion of model 'm' (mode='int8') failed: boom")
        return real_measure(model, test, tflite_path, **kwargs)

    monkeypatch.setattr(model_metrics, "measure", failing_optimized_export)
    with pytest.raises(tflite_export.ConversionError) as raised:
        execute(Recipe(epochs=1, batch_size=64), [], make_strategy("default"), export_dir=str(tmp_path))
    message = str(raised.value)
    saved = os.path.join(str(tmp_path), "optimized.keras")
    assert "failed: boom" in message and f"The trained model is saved: {os.path.abspath(saved)}" in message
    assert f"python -m tflite_export {os.path.abspath(saved)} optimized.tflite --mode=float32" in message
    assert os.path.getsize(saved) > 0


def test_epochs_0_uses_a_trained_model_as_given_before_its_techniques(tmp_path, caplog):
    """A trained .keras file is not trained again: its weights and BatchNorm statistics reach the baseline as they are."""
    import logging

    import keras
    import numpy as np

    from kopt.pipeline import TechniqueSpec
    from kopt.pipeline import run

    keras.utils.set_random_seed(1)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, use_bias=False, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Flatten()(keras.layers.ReLU()(x))
    model = keras.Model(inputs, keras.layers.Dense(10, name="logits")(x))
    bn = model.get_layer("bn")
    bn.moving_mean.assign(np.full(4, 0.25, "float32"))  # statistics a re-estimation would overwrite
    bn.moving_variance.assign(np.full(4, 3.0, "float32"))
    model.save(tmp_path / "trained.keras")
    recipe = Recipe(
        model=str(tmp_path / "trained.keras"),
        epochs=0,
        export_dir=str(tmp_path / "out"),
        techniques=(TechniqueSpec("ptq", {"mode": "dynamic"}),),
    )
    with caplog.at_level(logging.INFO):
        report = run(recipe)
    baseline = keras.models.load_model(report["files"]["baseline_keras"])
    for given, kept in zip(model.get_weights(), baseline.get_weights(), strict=True):
        np.testing.assert_array_equal(given, kept)
    assert report["recipe"]["epochs"] == 0 and report["optimized"]["tflite_mode"] == "dynamic"
    assert report["timings_s"]["baseline_training"] < 1.0
    assert "used as given (--epochs=0)" in caplog.text and "untrained" not in caplog.text
    with caplog.at_level(logging.WARNING):
        run(Recipe(epochs=0, export_dir=str(tmp_path / "builtin")))
    assert "--epochs=0 with the built-in model small_cnn and no --init_from: it is untrained" in caplog.text
