"""The technique flags and the CLI's tables, read from the techniques' settings."""

from absl import flags

from kopt.cli import optimize  # noqa: F401 - defines the flags
from kopt.cli import technique_flags
from kopt.cli.recipe_flags import FLAG_KEYS
from kopt.pipeline import get_technique
from kopt.pipeline.settings import settings_of


def test_every_declared_flag_is_defined_with_the_declared_default():
    for technique in technique_flags.TECHNIQUES:
        for item in settings_of(technique.settings):
            if item.flag is not None and item.help is not None:
                assert flags.FLAGS[item.flag].default == item.flag_default, item.flag
                assert flags.FLAGS[item.flag].help.endswith(item.help)


def test_tables_follow_the_declarations():
    assert FLAG_KEYS["epochs"] == ("epochs", "distill.epochs")
    assert FLAG_KEYS["quantized_io"] == ("qat.io_type", "ptq.io_type")
    assert FLAG_KEYS["cluster_per_channel"] == ("cluster.cluster_per_channel", "qat.cluster_per_channel")
    assert FLAG_KEYS["qat"] == ()
    assert technique_flags.STAGE_OF_FLAG["sparsity_m_by_n"] == "prune"
    assert technique_flags.FLAG_FOR_KEY["auto.epochs"] == "finetune_epochs"
    assert technique_flags.NEEDS_STAGE["cluster_per_channel"] == ("cluster",)  # qat's follows the cluster stage
    assert technique_flags.NEEDS_STAGE["finetune_epochs"] == (
        "prune", "sparsity_m_by_n", "prune_structured", "prune_structured_speedup", "cluster", "qat", "auto",
    )  # fmt: skip
    assert technique_flags.STAGE_OF_FLAG["prune_structured_speedup"] == "prune_structured"
    assert [t.name for t in technique_flags.BUILD_ORDER][:4] == ["distill", "prune_structured", "prune", "cluster"]


def test_params_from_flags_follow_each_settings_rule():
    value = {name: flags.FLAGS[name].value for name in flags.FLAGS}
    value.update(auto=True, ptq="int8")
    auto = technique_flags.params_from_flags(get_technique("auto"), value, set(), ())
    assert "epochs" not in auto and "learning_rate" not in auto  # only when given / set
    auto = technique_flags.params_from_flags(get_technique("auto"), value, {"finetune_epochs"}, ())
    assert auto["epochs"] == flags.FLAGS["finetune_epochs"].value
    assert technique_flags.params_from_flags(get_technique("ptq"), value, set(), ()) == {
        "mode": "int8", "io_type": "float32",
    }  # fmt: skip
