"""kopt-optimize --init_from: the run starts from a saved model's weights, or stops before training."""

import json

import keras
import pytest

from kopt.data import load_dataset
from kopt.models import small_cnn
from tests.cli.in_process import is_refused
from tests.cli.in_process import refused
from tests.cli.test_optimize import _run


def _unrelated(tmp_path):
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10, name="other")])
    path = tmp_path / "unrelated.keras"
    model.save(str(path))
    return str(path)


@pytest.mark.parametrize(
    "make_args, expected",
    [
        (lambda tmp: [f"--init_from={tmp}/absent.keras"], "--init_from={tmp}/absent.keras: file not found"),
        (lambda tmp: ["--init_from=weights.h5"], "--init_from=weights.h5: must be a path to a .keras file"),
        (
            lambda tmp: [f"--init_from={_unrelated(tmp)}"],
            "--init_from={tmp}/unrelated.keras: none of its weights fits model 'small_cnn'",
        ),
    ],
)
def test_a_file_that_cannot_start_the_model_stops_the_run_before_training(tmp_path, monkeypatch, make_args, expected):
    is_refused(refused(make_args(tmp_path), tmp_path, monkeypatch), expected, tmp_path)


def test_a_recipe_file_key_is_checked_and_the_flag_overrides_it(tmp_path, monkeypatch):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"epochs: 1\ninit_from: {tmp_path}/absent.keras\ntechniques: []\n")
    result = refused([f"--recipe={recipe}"], tmp_path, monkeypatch)
    is_refused(result, f"init_from={tmp_path}/absent.keras: file not found", tmp_path)
    result = refused([f"--recipe={recipe}", "--init_from=other.keras"], tmp_path, monkeypatch)
    is_refused(result, "--init_from=other.keras: file not found", tmp_path)


@pytest.mark.slow
def test_a_trained_source_gives_its_accuracy_before_any_real_training(tmp_path):
    keras.utils.set_random_seed(0)
    train, test, info = load_dataset("digits", batch_size=64, seed=0)
    source = small_cnn(info.input_shape, info.num_classes)
    source.compile(
        optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    source.fit(train, epochs=8, verbose=0, shuffle=False)  # the dataset is shuffled already
    source_accuracy = source.evaluate(test, verbose=0)[1]
    assert source_accuracy > 0.85
    source.save(str(tmp_path / "trained.keras"))
    # A learning rate this small leaves the weights where they start: the accuracy is the start's.
    common = ["--techniques=none", "--epochs=1", "--learning_rate=1e-9", "--report=r.json"]
    result = _run([*common, "--init_from=trained.keras"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Initialized model small_cnn from trained.keras: transfer_weights (match by name): 10 weights copied" in (
        result.stderr
    )
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["init_from"]["counts"] == {"copied": 10, "partial": 0, "skipped": 0}
    assert report["recipe"]["init_from"] == "trained.keras"
    assert report["baseline"]["keras_accuracy"] == pytest.approx(source_accuracy, abs=0.01)
    scratch = _run([*common, "--export_dir=scratch"], cwd=tmp_path)
    assert scratch.returncode == 0, scratch.stderr[-3000:]
    assert json.loads((tmp_path / "r.json").read_text())["baseline"]["keras_accuracy"] < 0.5
