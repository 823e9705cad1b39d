"""The auto stage: params checked up front, search run on a carved validation split."""

import os
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from kopt import ConfigError
from kopt.pipeline import get_technique
from kopt.pipeline.context import StageContext


@pytest.mark.parametrize(
    "params, key",
    [
        ({"max_accuracy_drop": -1}, "auto.max_accuracy_drop"),
        ({"target_sparsity": 0.9, "target_gzip_kb": 10}, "auto.target_gzip_kb"),
        ({"time_budget": 0}, "auto.time_budget"),
    ],
)
def test_check_names_the_recipe_key(params, key):
    with pytest.raises(ConfigError) as err:
        get_technique("auto").check(params)
    assert err.value.key == key


def _context(tmp_path):
    rng = np.random.default_rng(0)
    prototypes = rng.normal(size=(4, 12)) * 2
    labels = rng.integers(0, 4, 800)
    images = (prototypes[labels] + rng.normal(size=(800, 12))).astype("float32")
    train = tf.data.Dataset.from_tensor_slices((images, labels)).shuffle(800, seed=0).batch(64)
    recipe = types.SimpleNamespace(seed=0, batch_size=64, learning_rate=1e-3, batch_norm_batches=50)
    return StageContext(recipe=recipe, train=train, test=None, info=None, export_dir=str(tmp_path))


def _model(train):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(4)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(train, epochs=2, verbose=0, shuffle=False)
    return model


@pytest.mark.slow
def test_apply_returns_a_pruned_model_and_keeps_its_report(tmp_path):
    context = _context(tmp_path)
    technique = get_technique("auto")
    params = {"max_accuracy_drop": 2.0, "steps": [0.5], "epochs": 1}
    result = technique.apply(_model(context.train), context, params)
    entry = technique.report_entry
    assert [p["step"] for p in entry["pareto"]] == [0, 1] and entry["best"]["step"] == 1
    kernel = result.layers[0].kernel.numpy()
    assert (kernel == 0).mean() > 0.3
    assert os.path.isfile(tmp_path / "auto" / "best.tflite") and os.path.isfile(tmp_path / "auto" / "input.keras")
    assert technique.export_options(params)["mode"] == "int8"
    # A time budget too small to fine-tune once is the recipe key's error.
    with pytest.raises(ConfigError) as err:
        get_technique("auto").apply(_model(context.train), _context(tmp_path / "other"), {"time_budget": 0.001})
    assert err.value.key == "auto.time_budget"


@pytest.mark.slow
def test_a_recurrent_model_exports_the_file_the_search_measured(tmp_path):
    """An LSTM's int8 files are calibrated by kopt (the converter would unroll the loop); the export is the kept one."""
    import tflite_export
    from kopt.pipeline import Recipe
    from kopt.pipeline import TechniqueSpec
    from kopt.pipeline import run

    inputs = keras.Input((8, 8), name="rows")
    hidden = keras.layers.LSTM(16, name="rnn")(inputs)
    keras.Model(inputs, keras.layers.Dense(10, name="head")(hidden), name="rows").save(tmp_path / "rows.keras")
    params = {"max_accuracy_drop": 100.0, "steps": [0.5], "epochs": 1}
    recipe = Recipe(
        model=str(tmp_path / "rows.keras"),
        epochs=2,
        learning_rate=0.01,
        export_dir=str(tmp_path / "out"),
        techniques=(TechniqueSpec("auto", params),),
    )
    report = run(recipe)
    search = report["auto"]
    assert search["int8_calibration"] == "kopt" and search["best"]["step"] == 1
    exported = report["files"]["optimized_tflite"]
    assert tflite_export.inspect(exported)["op_counts"].get("WHILE") == 1
    assert open(exported, "rb").read() == open(search["files"]["best_tflite"], "rb").read()
    assert report["optimized"]["sparsity"] >= 0.45 and report["optimized"]["tflite_agreement"] == 1.0


def test_kopt_calibration_exports_from_the_models_own_ranges():
    technique = get_technique("auto")
    assert technique.export_options({"calibration": "kopt"}) == {"mode": "int8", "representative_dataset": None}
    # The converter's calibration, chosen or by default, gets the training data from the driver.
    assert technique.export_options({"calibration": "converter"}) == {"mode": "int8"}
    assert technique.export_options({}) == {"mode": "int8"}
