"""Tests for the CIFAR-10 suite: settings, networks, training, kopt's side, scoring, timing and the report."""

import json
import os
import sys

import keras
import numpy as np
import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from benchmarks import cifar  # noqa: E402
from benchmarks import cifar_kopt  # noqa: E402
from benchmarks import cifar_models  # noqa: E402
from benchmarks import cifar_report  # noqa: E402
from benchmarks import cifar_training  # noqa: E402
from benchmarks.cifar_settings import CifarSettings  # noqa: E402


def test_settings_refuse_unknown_models_and_techniques_naming_them():
    with pytest.raises(ValueError, match=r"models=\['vgg'\]"):
        CifarSettings(models=("vgg",))
    with pytest.raises(ValueError, match=r"techniques=\['float32', 'prune_70'\]"):
        CifarSettings(techniques=("float32", "prune_70"))
    with pytest.raises(ValueError, match="float_epochs must be at least 1. Received: float_epochs=0"):
        CifarSettings(float_epochs=0)
    quick = CifarSettings.quick()
    assert quick.models == ("resnet20",) and quick.as_dict()["models"] == ["resnet20"]


def test_networks_are_the_stated_ones_with_fast_batch_norm():
    resnet = cifar_models.build("resnet20", keras, seed=0)
    assert resnet.count_params() == 274042 and resnet.output_shape == (None, 10)
    mobilenet = cifar_models.build("mobilenet_v2", keras, seed=0)
    norms = [layer for layer in mobilenet.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and {layer.momentum for layer in norms} == {0.9}
    with pytest.raises(ValueError, match="model='lenet'"):
        cifar_models.build("lenet", keras, seed=0)


def test_augment_flips_and_shifts_within_four_pixels():
    images = np.zeros((64, 32, 32, 3), "float32")
    images[:, 16, 16] = 1.0
    out = cifar_training.augment(images, np.random.default_rng(0))
    assert out.shape == images.shape
    rows, cols = np.nonzero(out[..., 0])[1:]
    assert len(rows) == 64 and np.abs(rows - 16).max() <= 4 and np.abs(cols - 16).max() <= 5
    assert len(set(zip(rows.tolist(), cols.tolist(), strict=True))) > 1


def test_prune_schedule_reaches_its_sparsity_after_the_stated_share_of_steps():
    from kopt import pruning

    settings = {"prune_end_fraction": 0.5, "prune_frequency": 10}
    schedule = cifar_training.prune_schedule(pruning, settings, 200, 0.8)
    assert schedule.end_step == 99 and schedule.final_sparsity == 0.8 and schedule.frequency == 10


@pytest.mark.slow
def test_kopt_side_scores_and_times_every_row(tmp_path, tiny_cifar):
    """One tiny seed through kopt's side, the scoring and the latency pass: every row has its figures."""
    archive = tiny_cifar(192, 40)
    settings = CifarSettings.quick(
        # distill has its own test below (a student and a teacher trained in one part).
        techniques=("float32", "ptq_int8", "qat_int8", "prune_2of4", "float32_continued", "structured_50"),
        max_train_examples=128,
        max_test_examples=32,
    )
    run = cifar_kopt.run(str(archive), 0, settings.as_dict(), str(tmp_path / "work"), log=lambda _: None)
    assert set(run["rows"]) == {f"resnet20/{name}" for name in settings.techniques}, run["rows"]
    errors = {key: row["error"] for key, row in run["rows"].items() if "error" in row}
    assert not errors, errors
    assert run["framework"] == "kopt" and run["versions"]["keras"] == keras.__version__
    run["side"] = "kopt"
    x_test = (np.load(archive)["x_test"] / 255.0).astype("float32")
    cifar.score(run, x_test, np.load(archive)["y_test"], settings.max_test_examples)
    cifar.time_seed([run], settings)
    for key, row in run["rows"].items():
        assert 0 <= row["tflite_accuracy"] <= 1 and row["bytes"] > 0 and row["ms"] > 0, key
    # The QAT file agrees with its own Keras model; PTQ has none to agree with.
    assert run["rows"]["resnet20/qat_int8"]["agreement"] >= 0.9
    assert "agreement" not in run["rows"]["resnet20/ptq_int8"]
    smaller = run["rows"]["resnet20/structured_50"]["params"]
    assert smaller < 0.4 * run["rows"]["resnet20/float32"]["params"]
    # The control trains the whole float model on, as long as the structured rows.
    control = run["rows"]["resnet20/float32_continued"]
    assert control["params"] == run["rows"]["resnet20/float32"]["params"]
    assert control["train"]["steps"] == run["rows"]["resnet20/structured_50"]["train"]["steps"]


def _stand_in(name, keras, seed):
    """A two-convolution network in place of ``name``, for tests of a row's bookkeeping: the real
    networks go through every row in test_kopt_side_scores_and_times_every_row."""
    keras.utils.set_random_seed(seed)
    layers = keras.layers
    width = 8 if name == "mobilenet_v2" else 16  # the student smaller than the teacher
    inputs = keras.Input(cifar_models.INPUT_SHAPE, name="image")
    x = layers.Conv2D(width, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = layers.ReLU(name="stem_relu")(layers.BatchNormalization(name="stem_bn")(x))
    x = layers.Conv2D(2 * width, 3, strides=2, padding="same", activation="relu", name="conv2")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, layers.Dense(cifar_models.CLASSES, name="logits")(x), name=name)


@pytest.fixture
def stand_in_networks(monkeypatch):
    monkeypatch.setattr(cifar_models, "build", _stand_in)
    return _stand_in("resnet20", keras, 0).count_params()


def test_a_part_that_only_distils_trains_the_teacher_and_no_float_student(tmp_path, tiny_cifar, stand_in_networks):
    """The distillation row run on its own (the other rows in another part): one float model, one row."""
    archive = tiny_cifar(64, 16)
    settings = CifarSettings.quick(
        models=("mobilenet_v2", "resnet20"),
        techniques=("distill",),
        distill_student="mobilenet_v2",
        max_train_examples=64,
        max_test_examples=16,
    )
    lines = []
    run = cifar_kopt.run(str(archive), 0, settings.as_dict(), str(tmp_path / "work"), log=lines.append)
    assert set(run["rows"]) == {"mobilenet_v2/distill"}, run["rows"]
    assert "error" not in run["rows"]["mobilenet_v2/distill"], run["rows"]
    assert [line for line in lines if "float training" in line] == ["kopt seed 0: resnet20, float training (1 epochs)"]


def _row(accuracy, ms, size, step=1.0):
    return {
        "file": "f",
        "tflite_accuracy": accuracy,
        "agreement": 1.0,
        "bytes": size,
        "gzip_bytes": size,
        "ms": ms,
        "train": {"step_time_s_median": step},
    }


def _document(kopt_qat_step=1.5, tfmot_qat_step=2.0, kopt_prune_accuracy=0.60):
    def kopt_rows(seed):
        return {
            "mobilenet_v2/float32": _row(0.62 + seed / 100, 1.0, 1000),
            "mobilenet_v2/qat_int8": _row(0.619 + seed / 100, 0.8, 300, kopt_qat_step),
            "mobilenet_v2/prune_80": _row(kopt_prune_accuracy, 1.0, 400),
            "mobilenet_v2/structured_50": _row(0.615 + seed / 100, 0.5, 500),
            "mobilenet_v2/cluster_16": {"error": "ValueError: no"},
        }

    def tfmot_rows(seed):
        return {
            "mobilenet_v2/float32": _row(0.62 + seed / 100, 1.0, 1000),
            "mobilenet_v2/qat_int8": _row(0.61, 1.1, 300, tfmot_qat_step),
            "mobilenet_v2/prune_80": _row(0.60, 1.0, 400),
        }

    return {
        "seeds": [0, 1],
        "quick": False,
        "command": "python -m benchmarks.cifar",
        "wall_time_s": 60.0,
        "machine_line": "2 cores",
        "data": "cifar.npz",
        "data_summary": "12,000 training images",
        "settings": CifarSettings(models=("mobilenet_v2",)).as_dict(),
        "frameworks": {
            "kopt": {"status": "ran", "reason": None, "runs": {str(s): {"rows": kopt_rows(s)} for s in (0, 1)}},
            "tfmot": {"status": "ran", "reason": None, "runs": {str(s): {"rows": tfmot_rows(s)} for s in (0, 1)}},
        },
    }


def test_table_pools_seeds_against_each_seeds_own_float_file():
    entries = {(e["technique"], e["side"]): e for e in cifar_report.table(_document())}
    qat = entries[("qat_int8", "kopt")]
    assert qat["seeds"] == [0, 1] and qat["drop"] == pytest.approx([0.1, 0.1])
    assert qat["latency_ratio"] == pytest.approx([0.8, 0.8]) and qat["step_ratio"] == pytest.approx([1.5, 1.5])
    assert entries[("cluster_16", "kopt")]["errors"] == ["ValueError: no"]
    assert ("structured_50", "tfmot") not in entries


def test_checks_state_each_must_hold_from_the_figures():
    verdicts = [met for _, met in cifar_report.checks(_document())]
    # QAT within 0.5 points, int8 faster, 50% of channels 2x at 0.5 points, level with tfmot, QAT step ratio lower.
    assert verdicts == [True, True, True, True, True]
    slower = cifar_report.checks(_document(kopt_qat_step=2.5, kopt_prune_accuracy=0.58))
    assert [met for _, met in slower][3:] == [False, False]
    assert "mobilenet_v2 prune_80 (+2.00 points behind" in slower[3][0]


def test_render_gives_every_seed_and_the_failed_row(tmp_path):
    document = _document()
    text = cifar_report.render(document, CifarSettings(models=("mobilenet_v2",)))
    assert "| mobilenet_v2 | qat_int8 | kopt | 62.40 (61.90/62.90) | 0.10 (0.10/0.10) |" in text
    assert "| mobilenet_v2 | cluster_16 | kopt | failed: ValueError: no |" in text
    assert text.count(": met.") == 5
    path = cifar_report.plot(document, None, str(tmp_path / "cifar.png"))
    assert os.path.getsize(path) > 1000


def test_merge_pools_parts_and_refuses_differing_settings_or_repeated_rows():
    from benchmarks import cifar_merge

    first = _document()
    second = _document()
    second["seeds"] = [2]
    second["command"] = "python -m benchmarks.cifar --seeds=2"
    for side in ("kopt", "tfmot"):
        second["frameworks"][side]["runs"] = {"2": first["frameworks"][side]["runs"]["0"]}
    merged = cifar_merge.merge([first, second])
    assert merged["seeds"] == [0, 1, 2] and len(merged["parts"]) == 2
    qat = next(e for e in cifar_report.table(merged) if (e["technique"], e["side"]) == ("qat_int8", "kopt"))
    assert qat["seeds"] == [0, 1, 2]
    assert "Written in 2 parts" in cifar_report.render(merged, CifarSettings(models=("mobilenet_v2",)))
    with pytest.raises(ValueError, match="Row 'mobilenet_v2/float32' of kopt seed 0 is in two parts"):
        cifar_merge.merge([first, first])
    other = _document()
    other["settings"] = {**other["settings"], "float_epochs": 3}
    with pytest.raises(ValueError, match="setting 'float_epochs': 15 against 3"):
        cifar_merge.merge([first, other])


def test_merge_lets_a_newer_part_replace_rows_and_says_which():
    from benchmarks import cifar_merge

    first = _document()
    again = _document()
    again["command"] = "python -m benchmarks.cifar --seeds=0 --cifar_techniques=qat_int8 --skip_tfmot"
    runs = again["frameworks"]["kopt"]["runs"]["0"]["rows"]
    again["frameworks"]["kopt"]["runs"] = {"0": {"rows": {"mobilenet_v2/qat_int8": {**runs["mobilenet_v2/qat_int8"]}}}}
    again["frameworks"]["kopt"]["runs"]["0"]["rows"]["mobilenet_v2/qat_int8"]["gzip_bytes"] = 1
    again["frameworks"]["tfmot"]["runs"] = {}
    merged = cifar_merge.merge([first], [again])
    assert merged["replaced"] == [
        {"row": "mobilenet_v2/qat_int8", "side": "kopt", "seed": 0, "command": again["command"], "own_float": False}
    ]
    assert merged["frameworks"]["kopt"]["runs"]["0"]["rows"]["mobilenet_v2/qat_int8"]["gzip_bytes"] == 1
    # Every other row is the first part's.
    assert (
        merged["frameworks"]["kopt"]["runs"]["0"]["rows"]["mobilenet_v2/float32"]
        == (first["frameworks"]["kopt"]["runs"]["0"]["rows"]["mobilenet_v2/float32"])
    )
    text = cifar_report.render(merged, CifarSettings(models=("mobilenet_v2",)))
    assert "Row mobilenet_v2/qat_int8 (kopt, seed 0) is the one measured again" in text
    with pytest.raises(ValueError, match="in two parts"):
        cifar_merge.merge([first, again])


def test_a_part_without_float_rows_renders_its_rows_without_a_drop():
    """A --newer part of two seeds that measured only one row again: no float row, so no drop (was a crash)."""
    document = _document()
    for side in ("kopt", "tfmot"):
        for run in document["frameworks"][side]["runs"].values():
            run["rows"] = {key: row for key, row in run["rows"].items() if key == "mobilenet_v2/qat_int8"}
    qat = next(e for e in cifar_report.table(document) if (e["technique"], e["side"]) == ("qat_int8", "kopt"))
    assert qat["drop"] == [] and len(qat["tflite_accuracy"]) == len(qat["seeds"]) >= 2
    assert "| mobilenet_v2 | qat_int8 | kopt |" in cifar_report.render(
        document, CifarSettings(models=("mobilenet_v2",))
    )


def test_the_measurements_are_written_before_the_section_is_rendered(tmp_path):
    """A section that fails to render (as one did after 35 minutes of training) leaves the JSON on disk."""
    from benchmarks import suite as suite_lib

    def fail(document, settings):
        raise RuntimeError("render failed")

    failing = suite_lib.Suite(
        name="demo", settings=None, measure=lambda *args, **kwargs: {"rows": [1, 2]}, plot=None, render=fail,
        head=lambda *args: {},
    )  # fmt: skip
    with pytest.raises(RuntimeError, match="render failed"):
        failing.run_benchmark(
            "data.npz", [0], CifarSettings.quick(), None, output_dir=str(tmp_path),
            markdown_path=str(tmp_path / "B.md"), command="c", workdir=str(tmp_path / "work"),
        )  # fmt: skip
    with open(tmp_path / "demo.json", encoding="utf-8") as handle:
        assert json.load(handle)["rows"] == [1, 2]


def test_merge_takes_a_per_row_setting_from_the_part_whose_rows_remain():
    """Structured rows measured again with longer fine-tuning replace every old one; a mix is refused."""
    from benchmarks import cifar_merge

    first = _document()
    first["settings"] = {**first["settings"], "structured_epochs": 5}
    longer = _document()
    longer["settings"] = {**longer["settings"], "structured_epochs": 15}
    longer["command"] = "python -m benchmarks.cifar --cifar_techniques=structured_50 --skip_tfmot"
    for seed in ("0", "1"):
        rows = first["frameworks"]["kopt"]["runs"][seed]["rows"]
        longer["frameworks"]["kopt"]["runs"][seed] = {
            "rows": {"mobilenet_v2/structured_50": {**rows["mobilenet_v2/structured_50"]}}
        }
    longer["frameworks"]["tfmot"]["runs"] = {}
    longer["frameworks"]["kopt"]["runs"]["0"]["rows"]["mobilenet_v2/float32_continued"] = _row(0.7, 1.0, 1000)
    merged = cifar_merge.merge([first], [longer])
    assert merged["settings"]["structured_epochs"] == 15
    assert [entry["row"] for entry in merged["added"]] == ["mobilenet_v2/float32_continued"]
    text = cifar_report.render(merged, CifarSettings(models=("mobilenet_v2",)))
    assert "- Row mobilenet_v2/float32_continued (kopt, seed 0) comes from `python -m benchmarks.cifar" in text
    assert (
        CifarSettings(**{**merged["settings"], "models": ("mobilenet_v2",), "techniques": ()}).structured_epochs == 15
    )
    # Only seed 0 measured again: seed 1's row still has 5 epochs of fine-tuning.
    del longer["frameworks"]["kopt"]["runs"]["1"]
    del longer["frameworks"]["kopt"]["runs"]["0"]["rows"]["mobilenet_v2/float32_continued"]
    with pytest.raises(
        ValueError, match="different 'structured_epochs'.*mobilenet_v2/structured_50 \\(kopt, seed 1\\)"
    ):
        cifar_merge.merge([first], [longer])
    # A setting outside PER_ROW still has to match.
    longer["settings"] = {**longer["settings"], "float_epochs": 3}
    with pytest.raises(ValueError, match="setting 'float_epochs'"):
        cifar_merge.merge([first], [longer])


def test_the_amx_refused_pass_gets_its_own_column_and_must_hold_line():
    document = _document()
    assert "AMX" not in cifar_report.render(document, CifarSettings(models=("mobilenet_v2",)))
    for side in ("kopt", "tfmot"):
        for run in document["frameworks"][side]["runs"].values():
            for key, row in run["rows"].items():
                if "ms" in row:
                    row["ms_noamx"] = {"mobilenet_v2/qat_int8": 0.6}.get(key, 1.0)
    entries = {(e["technique"], e["side"]): e for e in cifar_report.table(document)}
    assert entries[("qat_int8", "kopt")]["latency_ratio_noamx"] == pytest.approx([0.6, 0.6])
    statements = [statement for statement, _ in cifar_report.checks(document)]
    assert (
        "MobileNetV2 int8 no slower than float with Intel AMX refused (XNNPACK as on CPUs without it): ratio 0.600"
        in statements
    )
    text = cifar_report.render(document, CifarSettings(models=("mobilenet_v2",)))
    assert "| latency ratio | latency ratio, AMX refused | step ratio |" in text
    assert "| 0.800 (0.800/0.800) | 0.600 (0.600/0.600) | 1.50 (1.50/1.50) |" in text
    assert "| mobilenet_v2 | cluster_16 | kopt | failed: ValueError: no | | | | | | | |" in text


def test_retime_adds_the_amx_refused_figures_to_a_kept_part(tmp_path):
    import keras

    import tflite_export
    from benchmarks import cifar_retime

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    path = str(tflite_export.convert(model, tmp_path / "m.tflite", batch_size=1))
    document = _document()
    for side in ("kopt", "tfmot"):
        for run in document["frameworks"][side]["runs"].values():
            for row in run["rows"].values():
                if "ms" in row:
                    row["file"] = path
    if tflite_export.amx_state() == "absent":
        with pytest.raises(ValueError, match="no Intel AMX"):
            cifar_retime.retime(document, "c")
        return
    document["settings"] = {**document["settings"], "latency_rounds": 1, "latency_calls": 2}
    assert cifar_retime.retime(document, "c") == 14
    rows = document["frameworks"]["kopt"]["runs"]["0"]["rows"]
    assert rows["mobilenet_v2/qat_int8"]["ms_noamx"] > 0 and "ms_noamx" not in rows["mobilenet_v2/cluster_16"]
    assert document["noamx_command"] == "c"
    assert cifar_retime.retime(document, "again") == 0  # every row has its figure
    document["frameworks"]["kopt"]["runs"]["1"]["rows"]["mobilenet_v2/float32"]["file"] = str(tmp_path / "gone")
    del document["frameworks"]["kopt"]["runs"]["1"]["rows"]["mobilenet_v2/float32"]["ms_noamx"]
    with pytest.raises(ValueError, match="1 file\\(s\\) of the part are gone"):
        cifar_retime.retime(document, "c")


def test_retime_both_replaces_both_passes_and_the_section_names_the_command(tmp_path):
    import keras

    import tflite_export
    from benchmarks import cifar_merge
    from benchmarks import cifar_retime

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    path = str(tflite_export.convert(model, tmp_path / "m.tflite", batch_size=1))
    document = _document()
    document["settings"] = {**document["settings"], "latency_rounds": 1, "latency_calls": 2}
    document["noamx_command"] = "old"
    for side in ("kopt", "tfmot"):
        for run in document["frameworks"][side]["runs"].values():
            for row in run["rows"].values():
                if "ms" in row:
                    row["file"], row["ms"] = path, -1.0
    assert cifar_retime.retime_both(document, "python -m benchmarks.cifar_retime --both p.json") == 14
    rows = [
        row
        for side in ("kopt", "tfmot")
        for run in document["frameworks"][side]["runs"].values()
        for row in run["rows"].values()
        if "file" in row
    ]
    assert rows and all(row["ms"] > 0 for row in rows)
    if tflite_export.amx_state() != "absent":
        assert all(row["ms_noamx"] > 0 for row in rows)
    assert "noamx_command" not in document
    merged = cifar_merge.merge([document])
    text = cifar_report.render(merged, CifarSettings(models=("mobilenet_v2",)))
    assert "timed again on a quiet machine by `python -m benchmarks.cifar_retime --both p.json`" in text
    rows[0]["file"] = str(tmp_path / "gone")
    with pytest.raises(ValueError, match="1 file\\(s\\) of the part are gone"):
        cifar_retime.retime_both(document, "c")


def test_the_structured_must_hold_is_judged_against_the_float_model_trained_as_long():
    """Fine-tuning epochs also train a float model that is not yet converged: the control row takes that out."""
    document = _document()
    plain = cifar_report.checks(document)[2]
    assert plain[1] is True and "(no float32_continued control row)" in plain[0]
    for seed in (0, 1):
        rows = document["frameworks"]["kopt"]["runs"][str(seed)]["rows"]
        rows["mobilenet_v2/float32_continued"] = _row(0.70 + seed / 100, 1.0, 1000)
    statement, met = cifar_report.checks(document)[2]
    # structured_50 is 0.615/0.625 against the control's 0.70/0.71: 8.5 points below it.
    assert met is False
    assert "0.50 points below the float model, 8.50 below it trained as many more epochs" in statement
    assert "(float32_continued, seeds [0, 1])" in statement
    assert ("float32_continued", "kopt") in {(e["technique"], e["side"]) for e in cifar_report.table(document)}
    assert "structured_50_scratch" not in statement
    # The same architecture trained from scratch for the whole budget: 0.65/0.66, 5 points below the control.
    for seed in (0, 1):
        rows = document["frameworks"]["kopt"]["runs"][str(seed)]["rows"]
        rows["mobilenet_v2/structured_50_scratch"] = _row(0.65 + seed / 100, 0.5, 500)
    statement, met = cifar_report.checks(document)[2]
    assert met is False
    assert "from scratch for the whole budget, `structured_50_scratch`: 65.50%, 5.00 points below the control" in (
        statement
    )


def test_a_newer_part_with_its_own_float_row_keeps_its_ratios_in_one_process():
    """A part that trained and timed the float model again beside a new row: the section's float rows stay,
    the new row's drop and ratios are to its own part's float row."""
    from benchmarks import cifar_merge

    first = _document()
    part = _document()
    part["command"] = "python -m benchmarks.cifar --cifar_techniques=float32,structured_latency --skip_tfmot"
    part["frameworks"]["tfmot"]["runs"] = {}
    for seed in (0, 1):
        part["frameworks"]["kopt"]["runs"][str(seed)] = {
            "rows": {
                # The same float model, timed slower in this part's pass than in the first part's.
                "mobilenet_v2/float32": _row(0.62 + seed / 100, 2.0, 1000, step=2.0),
                "mobilenet_v2/structured_latency": {**_row(0.60 + seed / 100, 1.0, 600, step=1.0),
                                                    "channels_removed": 0.3},
            }
        }  # fmt: skip
    merged = cifar_merge.merge([first], [part])
    rows = merged["frameworks"]["kopt"]["runs"]["0"]["rows"]
    assert rows["mobilenet_v2/float32"] == first["frameworks"]["kopt"]["runs"]["0"]["rows"]["mobilenet_v2/float32"]
    assert [(entry["row"], entry["own_float"]) for entry in merged["added"]] == [
        ("mobilenet_v2/structured_latency", True),
        ("mobilenet_v2/structured_latency", True),
    ]
    entries = {(e["technique"], e["side"]): e for e in cifar_report.table(merged)}
    fast = entries[("structured_latency", "kopt")]
    # To the part's float row (2.0 ms), not the section's (1.0 ms).
    assert fast["latency_ratio"] == pytest.approx([0.5, 0.5]) and fast["step_ratio"] == pytest.approx([0.5, 0.5])
    assert fast["drop"] == pytest.approx([2.0, 2.0]) and fast["channels_removed"] == [0.3, 0.3]
    assert entries[("qat_int8", "kopt")]["latency_ratio"] == pytest.approx([0.8, 0.8])
    text = cifar_report.render(merged, CifarSettings(models=("mobilenet_v2",)))
    assert "which trained and timed the seed's float model again: its drop and ratios are to that float row" in text
    statement, met = cifar_report.checks(merged)[3]
    assert statement.startswith("MobileNetV2 latency-aware channel plan (`latency_channel_plan`, 30% of channels;")
    assert "2.00x, 2.00 points below the float model (no float32_continued control row)" in statement
    assert met is False
    for seed in (0, 1):
        first["frameworks"]["kopt"]["runs"][str(seed)]["rows"]["mobilenet_v2/float32_continued"] = _row(
            0.605 + seed / 100, 1.0, 1000
        )
    statement, met = cifar_report.checks(cifar_merge.merge([first], [part]))[3]
    assert met is True and "0.50 below it trained as many more epochs" in statement
    # Without a float row of its own, a newer part's row is to the section's float row, as before.
    for seed in (0, 1):
        del part["frameworks"]["kopt"]["runs"][str(seed)]["rows"]["mobilenet_v2/float32"]
    merged = cifar_merge.merge([first], [part])
    assert [entry["own_float"] for entry in merged["added"]] == [False, False]
    fast = next(e for e in cifar_report.table(merged) if e["technique"] == "structured_latency")
    assert fast["latency_ratio"] == pytest.approx([1.0, 1.0])


def test_the_latency_plan_row_times_each_layer_and_removes_channels(tmp_path, tiny_cifar, stand_in_networks):
    """The structured_latency row: a latency_channel_plan for the settings' speedup, fine-tuned, its share stated."""
    archive = tiny_cifar(64, 16)
    settings = CifarSettings.quick(
        techniques=("structured_latency",), structured_speedup=1.5, max_train_examples=64, max_test_examples=16
    )
    lines = []
    run = cifar_kopt.run(str(archive), 0, settings.as_dict(), str(tmp_path / "work"), log=lines.append)
    row = run["rows"]["resnet20/structured_latency"]
    assert "error" not in row, row
    assert 0.05 < row["channels_removed"] < 0.75 and row["params"] < stand_in_networks
    assert row["train"]["steps"] == 64 // cifar_training.BATCH * settings.structured_epochs
    with pytest.raises(ValueError, match="structured_speedup=1.0"):
        CifarSettings(structured_speedup=1.0)


def test_the_scratch_row_trains_the_pruned_architecture_afresh_for_the_whole_budget(
    tmp_path, tiny_cifar, stand_in_networks
):
    """structured_50_scratch: prune_channels' 50% architecture, new weights, float + structured epochs."""
    archive = tiny_cifar(64, 16)
    settings = CifarSettings.quick(
        techniques=("structured_50", "structured_50_scratch"),
        structured_epochs=1,
        max_train_examples=64,
        max_test_examples=16,
    )
    run = cifar_kopt.run(str(archive), 0, settings.as_dict(), str(tmp_path / "work"), log=lambda _: None)
    pruned, scratch = run["rows"]["resnet20/structured_50"], run["rows"]["resnet20/structured_50_scratch"]
    assert "error" not in scratch, scratch
    assert scratch["params"] == pruned["params"] < stand_in_networks
    steps = 64 // cifar_training.BATCH
    assert scratch["train"]["steps"] == steps * (settings.float_epochs + settings.structured_epochs)
    assert pruned["train"]["steps"] == steps * settings.structured_epochs
    with open(pruned["file"], "rb") as first, open(scratch["file"], "rb") as second:
        assert first.read() != second.read()
    assert "Structured 50% from scratch: the architecture prune_channels leaves at 50%" in settings.describe()


def test_the_float_epochs_flag_lengthens_only_the_float_training():
    from absl import flags
    from absl.testing import flagsaver

    with flagsaver.as_parsed(cifar_float_epochs="60", cifar_techniques="float32,structured_50"):
        settings = cifar._settings(False, flags.FLAGS)
    assert settings.float_epochs == 60 and settings.structured_epochs == CifarSettings().structured_epochs
    assert settings.techniques == ("float32", "structured_50")
    assert cifar._settings(False, flags.FLAGS).float_epochs == CifarSettings().float_epochs
    with flagsaver.as_parsed(cifar_float_epochs="0"), pytest.raises(ValueError, match="float_epochs=0"):
        cifar._settings(False, flags.FLAGS)


def test_merge_writes_a_section_of_its_own_for_parts_with_a_longer_float_training(tmp_path, monkeypatch):
    from benchmarks import cifar_merge
    from benchmarks import harness

    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    monkeypatch.setattr(harness, "REPO_ROOT", str(tmp_path))
    document = _document()
    document["settings"] = {**document["settings"], "float_epochs": 60}
    part = tmp_path / "part.json"
    part.write_text(json.dumps(document), encoding="utf-8")
    cifar_merge.main(["cifar_merge", "--section=cifar_converged", str(part)])
    text = (tmp_path / "BENCHMARKS.md").read_text(encoding="utf-8")
    assert "<!-- cifar_converged:begin -->" in text and "<!-- cifar:begin -->" not in text
    assert "## Real architectures on CIFAR-10, float models trained 60 epochs (issue 25)" in text
    written = json.loads((tmp_path / "benchmarks" / "results" / "cifar_converged.json").read_text(encoding="utf-8"))
    assert written["benchmark"] == "cifar_converged" and written["settings"]["float_epochs"] == 60
    assert (tmp_path / "benchmarks" / "results" / "cifar_converged.png").stat().st_size > 1000
    with pytest.raises(SystemExit, match="Received: --section=bad-name"):
        cifar_merge.main(["cifar_merge", "--section=bad-name", str(part)])
