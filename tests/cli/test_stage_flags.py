"""Technique flags: what stages they build, and flags refused without their technique."""

import pytest
from absl import flags
from absl.testing import flagsaver

from kopt.cli import optimize  # noqa: F401 - defines the flags
from kopt.cli import stage_flags
from kopt.errors import ConfigError
from kopt.pipeline.stages.prune import parse_m_by_n


def _stages(**given):
    with flagsaver.as_parsed(**{name: str(value) for name, value in given.items()}):
        stage_flags.check_flags_need_stage(flags.FLAGS)
        return stage_flags.techniques_from_flags(flags.FLAGS)


@pytest.mark.parametrize("name", sorted(stage_flags.NEEDS_STAGE))
def test_each_tuning_flag_alone_is_refused_naming_its_technique(name):
    value = {"teacher": "t.keras", "student": "tiny_mlp", "distillation": "hard", "temperature": 2, "alpha": 0.3,
             "prune_schedule": "constant", "cluster_init": "linear", "cluster_per_channel": "true",
             "qat_scheme": "16x8", "qat_first_and_last_8bit": "false", "qat_float_layers": "Conv1", "prune_structured_keep": "conv1", "qat_float_prefix": "true", "quantized_io": "int8", "ptq_calibration": "converter", "ptq_float_layers": "mel", "finetune_epochs": 2,
             "finetune_learning_rate": 0.01, "prune_policy": "xnnpack_sparse", "sparse_weights": "true", "max_trials": 3, "tune_dir": "d", "size_budget_kib": 40,
             "max_accuracy_drop": 0.3, "target_sparsity": 0.9, "target_gzip_kb": 8, "time_budget": 60,
             "auto_calibration": "kopt"}[name]  # fmt: skip
    with pytest.raises(ConfigError, match="only means something with --") as caught:
        _stages(techniques="none", **{name: value})
    assert caught.value.key == name


def test_tuning_flags_with_their_technique_build_the_stage():
    (prune,) = _stages(prune=0.5, prune_schedule="constant", finetune_epochs=2)
    assert prune.params == {"target_sparsity": 0.5, "schedule": "constant", "epochs": 2, "learning_rate": None}
    (prune,) = _stages(prune=0.8, prune_policy="xnnpack_sparse", sparse_weights="true")
    assert (prune.params["policy"], prune.params["sparse_weights"]) == ("xnnpack_sparse", True)
    (prune,) = _stages(prune=0.8)
    assert "policy" not in prune.params and "sparse_weights" not in prune.params  # the report keeps its keys
    (ptq,) = _stages(ptq="int8", quantized_io="int8")
    assert ptq.params == {"mode": "int8", "io_type": "int8"}  # the stage picks kopt's calibration
    (ptq,) = _stages(ptq="int8", ptq_calibration="converter")
    assert ptq.params == {"mode": "int8", "io_type": "float32", "calibration": "converter"}


def test_no_technique_flag_prunes_then_quantizes_and_none_trains_float_only():
    prune, qat = _stages()
    assert (prune.name, prune.params["target_sparsity"]) == ("prune", stage_flags.DEFAULT_SPARSITY)
    assert (qat.name, qat.params["preserve"]) == ("qat", ["sparsity"])
    prune, qat = _stages(finetune_epochs=2, qat_scheme="4bit")  # tuning flags tune the default run
    assert prune.params["epochs"] == qat.params["epochs"] == 2 and qat.params["scheme"] == "4bit"
    assert _stages(techniques="none") == ()
    (cluster,) = _stages(cluster=8)  # a technique flag replaces the default
    assert cluster.name == "cluster"
    with pytest.raises(ConfigError, match="--prune asks for a technique") as caught:
        _stages(techniques="none", prune=0.5)
    assert caught.value.key == "techniques"


def test_prune_structured_keep_names_the_layers_left_whole():
    (stage,) = _stages(prune_structured=0.5, prune_structured_keep="conv1, conv2")
    assert stage.params["keep_layers"] == ["conv1", "conv2"]
    (stage,) = _stages(prune_structured=0.5)
    assert "keep_layers" not in stage.params


def test_flags_build_stages_in_the_order_recipes_are_checked_against():
    names = [spec.name for spec in _stages(distill="true", prune_structured=0.5, prune=0.5, cluster=8, qat="true")]
    assert names == ["distill", "prune_structured", "prune", "cluster", "qat"]


def test_qat_after_pruning_always_says_what_it_keeps():
    prune, qat = _stages(prune=0.5, qat="true")
    assert qat.params["preserve"] == ["sparsity"]
    prune, qat = _stages(prune=0.5, qat="true", qat_scheme="16x8")
    assert qat.params["preserve"] == []  # 16x8 cannot keep them; stated, and logged as a warning


def test_parse_m_by_n():
    assert parse_m_by_n("2, 4") == [2, 4]
    with pytest.raises(ConfigError, match="sparsity_m_by_n=2x4"):
        parse_m_by_n("2x4")
