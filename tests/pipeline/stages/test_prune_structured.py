"""The prune_structured stage: a smaller model, fine-tuned and exported."""

import keras
import pytest

from kopt import ConfigError
from kopt.pipeline import Recipe
from kopt.pipeline import TechniqueSpec
from kopt.pipeline import get_technique
from kopt.pipeline import run


@pytest.mark.slow
def test_structured_then_magnitude_pruning_compose(tmp_path):
    recipe = Recipe(
        epochs=2,
        export_dir=str(tmp_path),
        techniques=(
            TechniqueSpec("prune_structured", {"fraction": 0.5, "epochs": 2}),
            TechniqueSpec("prune", {"target_sparsity": 0.5, "epochs": 2}),
        ),
    )
    report = run(recipe)
    baseline, optimized = report["baseline"], report["optimized"]
    assert report["techniques"] == ["prune_structured", "prune"]
    # Half the channels of every hidden layer: roughly a quarter of the weights remain.
    assert optimized["params"] < 0.4 * baseline["params"]
    assert optimized["tflite_bytes"] < 0.4 * baseline["tflite_bytes"]
    assert optimized["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert optimized["tflite_agreement"] == 1.0


@pytest.mark.parametrize("fraction", [None, 0, 1, 1.5, "half"])
def test_check_rejects_bad_fractions(fraction):
    with pytest.raises(ConfigError) as err:
        get_technique("prune_structured").check({"fraction": fraction, "epochs": 1})
    assert err.value.key == "prune_structured.fraction"


def test_check_wants_exactly_one_of_fraction_and_speedup():
    technique = get_technique("prune_structured")
    technique.check({"speedup": 1.7, "epochs": 1})
    for params in ({"epochs": 1}, {"fraction": 0.5, "speedup": 1.7, "epochs": 1}):
        with pytest.raises(ConfigError, match="exactly one of fraction"):
            technique.check(params)
    with pytest.raises(ConfigError) as err:
        technique.check({"speedup": 1.0, "epochs": 1})
    assert err.value.key == "prune_structured.speedup"


def test_a_speedup_prunes_where_the_layers_take_time(tmp_path):
    recipe = Recipe(
        epochs=1,
        export_dir=str(tmp_path),
        techniques=(TechniqueSpec("prune_structured", {"speedup": 1.5, "epochs": 1}),),
    )
    report = run(recipe)
    assert report["techniques"] == ["prune_structured"]
    assert report["optimized"]["params"] < report["baseline"]["params"]
    assert report["optimized"]["tflite_agreement"] == 1.0


@keras.saving.register_keras_serializable(package="kopt_tests")
class ChannelGate(keras.layers.Layer):
    """A user's layer weighing each channel: structured pruning cannot know how to slice it."""

    def build(self, input_shape):
        self.gate = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="gate")

    def call(self, inputs):
        return inputs * self.gate


def _gated_cnn(path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="gated_conv")(inputs)
    x = ChannelGate(name="gate")(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="free_conv")(x)
    x = keras.layers.Dense(16, activation="relu", name="hidden")(keras.layers.Flatten()(x))
    keras.Model(inputs, keras.layers.Dense(10, name="logits")(x), name="gated").save(path)
    return str(path)


def test_a_layer_that_cannot_be_sliced_is_left_whole_with_keep_layers(tmp_path):
    model = _gated_cnn(tmp_path / "gated.keras")
    recipe = Recipe(
        model=model,
        epochs=1,
        export_dir=str(tmp_path / "refused"),
        techniques=(TechniqueSpec("prune_structured", {"fraction": 0.5, "epochs": 1}),),
    )
    with pytest.raises(ConfigError) as err:
        run(recipe)
    assert "'gate' (ChannelGate)" in err.value.reason and "--prune_structured_keep" in err.value.reason
    params = {"fraction": 0.5, "epochs": 1, "keep_layers": ["gated_conv"]}
    report = run(
        Recipe(
            model=model,
            epochs=1,
            export_dir=str(tmp_path / "out"),
            techniques=(TechniqueSpec("prune_structured", params),),
        )
    )
    smaller = keras.models.load_model(report["files"]["optimized_keras"])
    assert smaller.get_layer("gated_conv").filters == 8  # kept whole, as the gate it feeds
    assert smaller.get_layer("free_conv").filters == 8 and smaller.get_layer("hidden").units == 8
    assert report["optimized"]["tflite_agreement"] == 1.0


@pytest.mark.parametrize(
    "keep, reason",
    [
        (["nowhere"], "not in model"),
        (["flatten"], "produces no channels"),
        (["gated_conv", "free_conv", "hidden"], "leaves no channels"),
    ],
)
def test_keep_layers_that_cannot_be_kept_are_refused_before_training(tmp_path, keep, reason):
    from kopt.models import get_model

    model = get_model(_gated_cnn(tmp_path / "gated.keras"), (8, 8, 1), 10)
    if keep == ["flatten"]:
        keep = [next(layer.name for layer in model.layers if isinstance(layer, keras.layers.Flatten))]
    with pytest.raises(ConfigError) as err:
        get_technique("prune_structured").check_model(model, {"fraction": 0.5, "keep_layers": keep})
    assert err.value.key == "prune_structured.keep_layers" and reason in err.value.reason


def test_keep_layers_are_for_a_fraction():
    with pytest.raises(ConfigError) as err:
        get_technique("prune_structured").check({"speedup": 1.5, "keep_layers": ["conv1"], "epochs": 1})
    assert err.value.key == "prune_structured.keep_layers"
