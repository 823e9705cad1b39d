"""The per-layer int8 benchmark on a tiny network: alike layers timed once, totals per kind, the report."""

import os
import sys

import keras

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from benchmarks import int8_ops  # noqa: E402


def _tiny(side):
    inputs = keras.Input((side, side, 3))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    y = keras.layers.DepthwiseConv2D(3, padding="same")(x)
    y = keras.layers.DepthwiseConv2D(3, padding="same")(y)
    x = keras.layers.Add()([x, y])
    x = keras.layers.Conv2D(8, 1)(keras.layers.ReLU()(x))
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(4)(x), name="tiny")


def test_alike_layers_share_one_signature_and_rebuild_with_their_shapes():
    signatures = int8_ops.layer_signatures(_tiny(12))
    kinds = sorted((signature[0], count) for signature, count in signatures.items())
    assert kinds == [("add", 1), ("conv", 1), ("conv", 1), ("dense", 1), ("depthwise", 2)]
    for signature in signatures:
        model = int8_ops.single_layer_model(signature)
        assert [tuple(x.shape[1:]) for x in model.inputs] == list(signature[1])
        assert len(model.layers) == len(signature[1]) + 1


def test_measure_times_each_layer_both_ways_and_the_report_sums_per_kind(monkeypatch):
    monkeypatch.setitem(int8_ops.int8_latency.CASES, "tiny", int8_ops.int8_latency.image_case(_tiny, 12, 3))
    result = int8_ops.measure("tiny", rounds=2, calls=3)
    assert {layer["kind"] for layer in result["layers"]} == {"add", "conv", "dense", "depthwise"}
    assert all(layer["float32_ms"] > 0 and layer["int8_ms"] > 0 for layer in result["layers"])
    assert set(result["whole_ms"]) == {"float32", "converter_int8"}
    document = {"command": "c", "machine": "m", "cpu_extensions": [], "rounds": 2, "result": result}
    text = int8_ops.report(document, worst=2)
    depthwise = next(layer for layer in result["layers"] if layer["kind"] == "depthwise")
    assert depthwise["count"] == 2
    assert f"| depthwise | 2 | {2 * depthwise['float32_ms']:.3f} |" in text
    assert text.count("\n| conv |") + text.count("\n| depthwise |") + text.count("\n| add |") >= 3
    assert "AMX" not in text
    refused = int8_ops.report({**document, "amx": "refused"}, worst=2)
    assert "float32 against int8, Intel AMX refused (issue 25)" in refused and "--refuse_amx" in refused
