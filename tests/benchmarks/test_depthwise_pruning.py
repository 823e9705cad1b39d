"""Tests for benchmarks/depthwise_pruning.py: the zero count, the report's means and the plot."""

import os
import sys

import keras
import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from benchmarks import depthwise_pruning  # noqa: E402


def test_zero_shares_counts_every_prunable_weight_and_the_depthwise_share():
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(4, 1, use_bias=False, name="conv")(inputs)
    x = keras.layers.DepthwiseConv2D(3, use_bias=False, name="dw")(x)
    model = keras.Model(inputs, keras.layers.BatchNormalization()(x))
    conv = np.ones((1, 1, 2, 4), "float32")
    conv[..., :2] = 0.0  # 4 of 8 conv weights are zero
    model.get_layer("conv").set_weights([conv])
    model.get_layer("dw").set_weights([np.ones((3, 3, 4, 1), "float32")])
    zeros, depthwise = depthwise_pruning.zero_shares(model)
    # 8 conv + 36 depthwise prunable weights; BatchNormalization is not counted.
    assert zeros == 4 / 44
    assert depthwise == 36 / 44


def _document():
    rows = [{"seed": s, "target": 0.0, "variant": "float", "accuracy": 0.40, "zeros": 0.0} for s in (0, 1)]
    for seed, (default, pruned) in enumerate([(0.28, 0.20), (0.30, 0.22)]):
        rows.append({"seed": seed, "target": 0.8, "variant": "default", "accuracy": default, "zeros": 0.75})
        rows.append({"seed": seed, "target": 0.8, "variant": "depthwise pruned", "accuracy": pruned, "zeros": 0.8})
    settings = {"float_epochs": 15, "finetune_epochs": 3, "prune_end_fraction": 0.6}
    return {
        "command": "python -m benchmarks.depthwise_pruning --seeds=0,1",
        "machine": "2 cores",
        "elapsed_min": 1.0,
        "data": "CIFAR-10",
        "settings": settings,
        "depthwise_share": 0.059,
        "rows": rows,
    }


def test_report_gives_each_variant_its_mean_over_seeds_and_every_seed(tmp_path):
    body = depthwise_pruning.report(_document())
    assert "| 80% | default | 2 | 29.00% | 75.0% |" in body
    assert "| 80% | depthwise pruned | 2 | 21.00% | 80.0% |" in body
    assert "| 1 | 80% | depthwise pruned | 22.00% |" in body
    assert "5.9% of the prunable weights" in body
    path = depthwise_pruning.plot(_document(), str(tmp_path / "plot.png"))
    assert os.path.getsize(path) > 0
