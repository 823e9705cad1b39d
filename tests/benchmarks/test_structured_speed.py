"""Tests for benchmarks/structured_speed.py: augmentation, the summary over seeds, the report and plot."""

import os
import sys

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from benchmarks import structured_speed  # noqa: E402


def _rows():
    rows = []
    for seed, (base, pruned) in enumerate([(0.70, 0.69), (0.72, 0.70)]):
        rows.append(
            {
                "seed": seed,
                "variant": "unpruned",
                "fraction": 0.0,
                "params": 10,
                "kib": 4.0,
                "tflite_accuracy": base,
                "ms": 2.0,
                "speedup": 1.0,
            }
        )
        rows.append(
            {
                "seed": seed,
                "variant": "latency 2x",
                "fraction": 0.5,
                "params": 5,
                "kib": 2.0,
                "tflite_accuracy": pruned,
                "ms": 1.0,
                "speedup": 2.0,
            }
        )
    return rows


def test_summary_compares_each_seed_with_its_own_unpruned_model():
    (unpruned, half) = structured_speed.summarize(_rows())
    assert unpruned["accuracy_drop_points_mean"] == 0.0 and half["seeds"] == 2
    assert half["speedup_mean"] == 2.0
    assert half["accuracy_drop_points_mean"] == 1.5 and half["accuracy_drop_points_max"] == 2.0


def _with_control(rows, accuracies=(0.72, 0.71)):
    controls = [
        {**row, "variant": structured_speed.CONTROL, "tflite_accuracy": accuracy}
        for row, accuracy in zip([r for r in rows if r["variant"] == "unpruned"], accuracies)
    ]
    return rows + controls


def test_summary_reads_drops_against_the_fine_tuned_control_where_every_seed_has_one():
    summary = {entry["variant"]: entry for entry in structured_speed.summarize(_with_control(_rows()))}
    half = summary["latency 2x"]
    # seed 0: 0.72 - 0.69, seed 1: 0.71 - 0.70; against the unpruned models as before.
    assert half["control_drop_points_mean"] == 2.0 and half["control_drop_points_max"] == 3.0
    assert half["accuracy_drop_points_mean"] == 1.5
    assert summary[structured_speed.CONTROL]["control_drop_points_mean"] == 0.0
    # A control for one seed only is no reference for the mean.
    partial = structured_speed.summarize(_with_control(_rows())[:-1])
    assert not any("control_drop_points_mean" in entry for entry in partial)


def _document(rows):
    return {
        "command": "python -m benchmarks.structured_speed",
        "machine": "m",
        "elapsed_min": 1.0,
        "data": "d",
        "settings": {"epochs": 15, "finetune_epochs": 5, "fractions": [0.5], "rounds": 7, "calls": 200},
        "rows": rows,
        "summary": structured_speed.summarize(rows),
    }


def test_report_has_the_control_column_only_with_a_control():
    rows = _with_control(_rows())
    document = _document(rows)
    text = structured_speed.report(document)
    assert "| latency 2x | 50% | 2 | 2.0x | 69.50% | 1.5 / 2.0 | 2.0 / 3.0 |" in text
    assert "trained the same 5 epochs at the same rate" in text and "distilled" not in text
    rows.append({**rows[1], "variant": "latency 2x, distilled", "tflite_accuracy": 0.71})
    document["summary"] = structured_speed.summarize(rows)
    assert "Rows marked distilled" in structured_speed.report(document)


def test_report_and_plot(tmp_path):
    document = _document(_rows())
    text = structured_speed.report(document)
    assert "| latency 2x | 50% | 2 | 2.0x | 69.50% | 1.5 / 2.0 |\n" in text and "control" not in text
    assert "| 1 | latency 2x | 50% | 5 | 2.0 | 70.00% | 1.0 | 2.0x |" in text
    assert os.path.getsize(structured_speed.plot(document, str(tmp_path / "p.png"))) > 0


def test_augment_keeps_shape_and_moves_pixels():
    images = np.random.default_rng(0).random((8, 32, 32, 3), np.float32)
    out = structured_speed._augment(images, np.random.default_rng(1))
    assert out.shape == images.shape and out.dtype == images.dtype and not np.array_equal(out, images)


def test_build_gives_batch_norm_a_momentum_that_keeps_up_with_a_short_schedule():
    import keras

    model = structured_speed.build(0)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(layer.momentum == 0.9 for layer in norms)
    assert model.output_shape == (None, 10)


def test_distilled_plans_must_be_among_the_timed_plans():
    import pytest

    with pytest.raises(ValueError, match=r"distill_speedups must be among speedups=\[1.7\]. Received: \[2.5\]"):
        structured_speed.measure_seed(
            0, epochs=1, finetune_epochs=1, fractions=[], speedups=[1.7], distill_speedups=[2.5], rounds=1, calls=1
        )


def test_variant_names_say_the_plan():
    assert structured_speed.variant_name(speedup=2.5, distilled=True) == "latency 2.5x, distilled"
    assert structured_speed.variant_name() == "unpruned"
    assert structured_speed.variant_name(0.3) == "uniform 30%"
    assert structured_speed.variant_name(speedup=1.7) == "latency 1.7x"


def _inverted_residual(seed):
    """MobileNetV2's pattern in five layers (a stem, expand, depthwise, project, residual add), for speed:
    converting and tracing the whole network ten times took four minutes of the suite."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((32, 32, 3))
    stem = keras.layers.ReLU(6.0)(keras.layers.BatchNormalization()(keras.layers.Conv2D(16, 3, strides=2)(inputs)))
    x = keras.layers.ReLU(6.0)(keras.layers.Conv2D(48, 1, name="expand")(stem))
    x = keras.layers.ReLU(6.0)(keras.layers.DepthwiseConv2D(3, padding="same", name="depthwise")(x))
    x = keras.layers.Add()([stem, keras.layers.Conv2D(16, 1, name="project")(x)])
    outputs = keras.layers.Dense(10, name="logits")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs)


def test_a_seed_runs_uniform_and_latency_plans_end_to_end(tiny_cifar, monkeypatch):
    """Tiny data, one epoch: every plan gives a row timed in the same pass, the latency plan from timed layers."""
    monkeypatch.setattr(structured_speed, "DATA", tiny_cifar(128, 64))
    monkeypatch.setattr(structured_speed, "build", _inverted_residual)
    trained, train = [], structured_speed._train

    def recording_train(model, *args, teacher=None):
        trained.append((model, model.count_params(), args[2:], teacher))
        return train(model, *args, teacher=teacher)

    monkeypatch.setattr(structured_speed, "_train", recording_train)
    rows = structured_speed.measure_seed(
        0, epochs=1, finetune_epochs=1, fractions=[0.5], speedups=[1.5], distill_speedups=[1.5], rounds=1, calls=2
    )
    names = ["unpruned", structured_speed.CONTROL, "uniform 50%", "latency 1.5x", "latency 1.5x, distilled"]
    assert [row["variant"] for row in rows] == names
    assert rows[0]["speedup"] == 1.0 and all(row["ms"] > 0 for row in rows)
    # The control is a copy of the trained model, fine-tuned as the pruned ones are; the unpruned row keeps its own.
    (model, params, float_args, _), (control, control_params, control_args, _) = trained[:2]
    assert control is not model and control_params == params == rows[1]["params"]
    assert float_args == (1, 2e-3, 0) and control_args == trained[2][2] == (1, 5e-4, 1000)
    # The distilled row: the latency plan's model again, same size, taught by the trained unpruned model.
    assert rows[4]["params"] == rows[3]["params"] and rows[4]["fraction"] == rows[3]["fraction"]
    assert [call[3] for call in trained] == [None, None, None, None, model]
    assert 0 < rows[3]["fraction"] < 1 and rows[3]["params"] < rows[0]["params"]
