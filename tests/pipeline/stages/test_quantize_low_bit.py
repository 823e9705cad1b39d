"""The qat stage with binary and ternary weights: checks, what earlier pruning makes it keep, flags, a driver run."""

import pytest
from absl import flags
from absl.testing import flagsaver

from kopt import ConfigError
from kopt.cli import optimize  # noqa: F401 - defines the flags
from kopt.cli import stage_flags
from kopt.pipeline import Recipe
from kopt.pipeline import TechniqueSpec
from kopt.pipeline import format_table
from kopt.pipeline import get_technique
from kopt.pipeline import run


@pytest.mark.parametrize("params", [{"scheme": "binary"}, {"scheme": "ternary", "preserve": ["sparsity"]}])
def test_qat_accepts_the_low_bit_schemes(params):
    get_technique("qat").check(params)
    assert get_technique("qat").export_options(params)["mode"] == "int8"


@pytest.mark.parametrize(
    "params, key",
    [
        ({"scheme": "binary", "preserve": ["sparsity"]}, "qat.scheme"),  # binary weights have no zeros
        ({"scheme": "ternary", "preserve": ["sparsity", "clusters"]}, "qat.scheme"),
        ({"scheme": "ternary", "first_and_last_8bit": "yes"}, "qat.first_and_last_8bit"),
        ({"scheme": "1bit"}, "qat.scheme"),
    ],
)
def test_qat_rejects_what_low_bit_weights_cannot_keep(params, key):
    with pytest.raises(ConfigError) as err:
        get_technique("qat").check(params)
    assert err.value.key == key


def test_after_pruning_ternary_keeps_the_zeros_and_binary_warns():
    technique = get_technique("qat")
    earlier = (TechniqueSpec("prune", {"target_sparsity": 0.5}), TechniqueSpec("cluster", {"number_of_clusters": 8}))
    assert technique.with_earlier_stages({"scheme": "ternary"}, earlier)["preserve"] == ["sparsity"]
    assert technique.with_earlier_stages({"scheme": "binary"}, earlier[:1])["preserve"] == []


def _stages(**given):
    with flagsaver.as_parsed(**{name: str(value) for name, value in given.items()}):
        stage_flags.check_flags_need_stage(flags.FLAGS)
        return stage_flags.techniques_from_flags(flags.FLAGS)


def test_flags_choose_the_scheme_and_the_8bit_ends():
    (qat,) = _stages(qat="true", qat_scheme="binary", qat_first_and_last_8bit="false")
    assert (qat.params["scheme"], qat.params["first_and_last_8bit"]) == ("binary", False)
    (qat,) = _stages(qat="true", qat_scheme="ternary")
    assert "first_and_last_8bit" not in qat.params  # the default, True, is the stage's own


@pytest.mark.slow
def test_prune_then_ternary_qat_keeps_the_zeros_through_the_driver(tmp_path):
    recipe = Recipe(
        epochs=2,
        export_dir=str(tmp_path),
        techniques=(
            TechniqueSpec("prune", {"target_sparsity": 0.5, "epochs": 1}),
            TechniqueSpec("qat", {"scheme": "ternary", "epochs": 1, "learning_rate": 1e-3, "preserve": ["sparsity"]}),
        ),
    )
    report = run(recipe)
    optimized = report["optimized"]
    assert optimized["sparsity"] >= 0.49
    assert optimized["tflite_mode"] == "int8" and optimized["tflite_agreement"] >= 0.99
    assert optimized["keras_accuracy"] >= report["baseline"]["keras_accuracy"] - 0.1
    # The report's packed size: 2 bits a ternary weight, against the int8 file and 32-bit float weights.
    assert report["baseline"]["packed_bytes"] == 4 * report["baseline"]["params"]
    assert optimized["packed_bytes"] < 0.5 * optimized["tflite_bytes"]
    assert "packed bytes" in format_table(report).splitlines()[0]
