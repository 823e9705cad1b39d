"""The conformance matrix: its cells on a few real architectures, and the README table it writes."""

import keras
import pytest

from benchmarks import zoo
from benchmarks import zoo_models


def test_every_model_builds_and_takes_its_sample_inputs():
    for name in ("MobileNetV2", "TransformerEncoder", "GRU"):
        model = zoo_models.build(name)
        x, y = zoo_models.sample_inputs(name, 4)
        assert model.predict(x, verbose=0).shape == (4, 10) and y.shape == (4,)
    with pytest.raises(ValueError, match="Received: name='VGG99'"):
        zoo_models.build("VGG99")


@pytest.mark.slow
@pytest.mark.parametrize(
    "model_name, technique",
    [
        ("MobileNetV2", "qat"),
        ("MobileNetV2", "structured"),
        ("TransformerEncoder", "ptq"),
        ("LSTM", "ptq"),
        ("TransformerEncoder", "qat"),
        ("GRU", "qat"),
        ("ConvNeXtTiny", "structured"),
        ("GRU", "prune"),
        ("TransformerEncoder", "cluster"),
        ("BidirectionalLSTM", "qat"),
        ("BidirectionalLSTM", "structured"),
    ],
)
def test_cells_that_must_work(model_name, technique):
    cell = zoo.run_cell(model_name, technique)
    assert cell["status"] == "ok", cell
    if technique == "qat" and model_name == "MobileNetV2":
        assert cell["fully_integer"], cell
    if technique == "qat":
        assert cell["agreement"] >= 0.95, cell
    if technique in ("structured",):
        assert cell["params_ratio"] < 0.9 and cell["agreement"] == 1.0, cell
    if technique == "cluster":  # embedding, attention projections and feed-forward: every kernel
        assert cell["wrapped_layers"] == 5 and cell["max_values_per_kernel"] <= zoo.CLUSTERS, cell


def test_a_refusal_is_one_line_and_names_the_layer(monkeypatch):
    # Every model of the matrix is handled now; a small model with a layer QAT
    # has no rule for stands in.
    def build_model():
        inputs = keras.Input((12, 8))
        x = keras.layers.GroupNormalization(2, name="norm")(keras.layers.Dense(8)(inputs))
        return keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(x)))

    monkeypatch.setitem(zoo_models.MODELS, "Tiny", (build_model, "sequence"))
    cell = zoo.run_cell("Tiny", "qat")
    assert (
        cell["status"] == "refused" and "'norm' (GroupNormalization)" in cell["detail"] and "\n" not in cell["detail"]
    )


def test_markdown_table_marks_refusals_crashes_and_float_ops_with_notes():
    results = {
        "cells": {
            "A": {"export": {"status": "ok", "detail": ""}, "qat": {"status": "refused", "detail": "no QAT for 'x'"}},
            "B": {
                "export": {"status": "crash", "detail": "AttributeError: boom (kopt/x.py:1)"},
                "qat": {"status": "ok", "detail": "", "fully_integer": False, "float_ops": ["op 3 CONV_2D"]},
            },
        }
    }
    table = zoo.markdown_table(results)
    # Columns follow zoo.TECHNIQUES: export, prune, qat, ...; cells not run say so.
    assert "| A | ok | not run | refused (1) | not run |" in table
    assert "| B | crash (2) | not run | ok, float ops (3) | not run |" in table
    assert "1. A / qat: no QAT for 'x'" in table and "3. B / qat: ['op 3 CONV_2D']" in table


def test_a_cluster_cell_whose_kernels_were_left_unclustered_says_so():
    """An LSTM's kernels once stayed float while its Dense head clustered, and the cell read plain ok."""
    many = {"status": "ok", "detail": "", "max_values_per_kernel": 4095}
    few = {"status": "ok", "detail": "", "max_values_per_kernel": zoo.CLUSTERS}
    table = zoo.markdown_table({"cells": {"L": {"cluster": many}, "M": {"cluster": few}}})
    assert "ok, kernels left unclustered (1)" in table and "| M | not run | not run | not run | ok |" in table
    assert f"1. L / cluster: a kernel of the stripped model holds 4095 values (K = {zoo.CLUSTERS})" in table


def test_agreement_report_lists_every_row_with_its_command():
    from benchmarks import zoo_agreement

    row = {
        "model": "MobileNetV2", "seed": 1, "epochs": 3, "float_accuracy": 0.25, "qat_accuracy": 0.26,
        "int8_accuracy": 0.255, "agreement": 0.9, "agreement_margin_over_0.02": None, "confident_fraction": 0.0,
        "mean_abs_prob_diff": 0.005, "fully_integer": True, "minutes": 2.0,
    }  # fmt: skip
    text = zoo_agreement.report([row, {**row, "epochs": 12}], learning_rate=1e-3)
    assert "--models=MobileNetV2 --epochs=3 --seeds=1" in text and "--epochs=12" in text
    assert "| MobileNetV2 | 3 | 1 | 25.00% | 26.00% | 25.50% | 90.00% | n/a (0%) | 0.00500 | True | 2.0 |" in text


def test_sequence_agreement_tokens_and_report():
    import numpy as np

    from benchmarks import sequence_agreement

    images = np.zeros((2, 28, 28), "uint8")
    images[1, :4, :4] = 255  # the first patch of the second digit is white
    tokens = sequence_agreement.tokens(images)
    assert tokens.shape == (2, 49) and tokens.max() < 49 * 16
    assert tokens[0, 0] == 0 and tokens[1, 0] == 15 and tokens[1, 1] == 16  # position * 16 + level
    row = {
        "model": "LSTM", "seed": 2, "epochs": 2, "float_accuracy": 0.9, "ptq_file_accuracy": 0.89,
        "ptq_agreement": 0.985, "calibrated_accuracy": 0.9, "calibrated_agreement": 0.995, "qat_accuracy": 0.91, "qat_file_accuracy": 0.91, "qat_agreement": 1.0,
        "ptq_kib": 156.0, "qat_kib": 104.4, "minutes": 0.3,
    }  # fmt: skip
    text = sequence_agreement.report([row])
    assert "--models=LSTM --seeds=2 --epochs=2" in text
    assert (
        "| LSTM | 2 | 2 | 90.00% | 89.00% | 98.50% | 90.00% | 99.50% | 91.00% | 91.00% | 100.00% | 156.0 | 104.4 | 0.3 |"
        in text
    )


def test_fused_lstm_report_and_alternating_latency(tmp_path):
    import warnings

    import keras
    import numpy as np

    import tflite_export
    from benchmarks import fused_lstm

    inputs = keras.Input((4, 3))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.LSTM(4)(inputs)))
    paths = []
    for fused in (False, True):
        path = str(tmp_path / f"{fused}.tflite")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            paths.append(tflite_export.convert(model, path, fuse_lstm=fused))
    timings = fused_lstm.alternating_latency(paths, np.ones((1, 4, 3), "float32"), runs=5, warmup=1)
    assert len(timings) == 2 and all(value > 0 for value in timings)
    row = {"seed": 1, "epochs": 2, "float_accuracy": 0.9}
    for mode in fused_lstm.MODES:
        for kind in ("loop", "fused"):
            row.update({f"{mode}_{kind}_kib": 10.0, f"{mode}_{kind}_agreement": 0.995, f"{mode}_{kind}_ms": 0.05})
            row[f"{mode}_{kind}_fully_integer"] = kind == "fused"
        row[f"{mode}_latency_ratio"] = 1.0
    text = fused_lstm.report([row])
    assert "`python -m benchmarks.fused_lstm --seeds=1 --epochs=2`" in text
    assert "| 1 | int8 | 10.0 | 10.0 | 99.50% | 99.50% | False / True | 0.05 | 0.05 | 1.0 |" in text
