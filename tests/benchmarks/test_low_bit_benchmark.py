"""The low-bit benchmark in seconds: real MNIST images, one epoch of a few batches, binary with and without a teacher."""

import json
import os
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from benchmarks import low_bit  # noqa: E402

pytestmark = pytest.mark.slow  # four files of the 225k-weight CNN: about 30 s


@pytest.fixture(scope="module")
def document():
    if not os.path.isfile(low_bit.DATA):
        pytest.fail(f"{low_bit.DATA} is missing; the benchmark's test needs the shared data beside the checkout")
    found = low_bit.run(low_bit.LowBitSettings.quick())
    return {**found, "command": "python -m benchmarks.low_bit --quick", "machine": "test machine"}


def test_quick_run_scores_every_variant_and_counts_the_binary_codes(document):
    variants = [(row["scheme"], row["distilled"]) for row in document["rows"]]
    assert variants == [("float", False), ("float_continued", False), ("binary", False), ("binary", True)]
    for row in document["rows"]:
        assert 0.0 <= row["tflite_accuracy"] <= 1.0 and row["file_bytes"] > 0
    binary = document["summary"]["binary"]
    # conv2, conv3 and the hidden Dense are binary: two int8 values in every output channel.
    assert binary["max_int8_values_per_channel"] == 2
    # 1 bit a weight for 223,744 of the 224,528 kernel weights: about 1/30 of float32.
    assert 1 / 32 < binary["packed_share_of_float32"] < 1 / 25
    assert document["summary"]["float"]["packed_share_of_float32"] == 1.0
    json.dumps(document)


def test_report_and_plot(document, tmp_path):
    text = low_bit.report(document)
    assert "python -m benchmarks.low_bit --quick" in text
    assert len([line for line in text.splitlines() if line.startswith("| ")]) == 1 + 4  # header and four variants
    assert "| binary + distillation |" in text
    path = low_bit.plot(document, str(tmp_path / "low_bit.png"))
    assert os.path.getsize(path) > 1000


def test_settings_reject_unknown_schemes():
    with pytest.raises(ValueError, match="schemes="):
        low_bit.LowBitSettings(schemes=("2bit",)).validate()


def test_cifar10_runs_the_same_cnn_on_colour_images(tmp_path):
    import dataclasses

    settings = dataclasses.replace(low_bit.LowBitSettings.quick(), dataset="cifar10", max_train_examples=64)
    found = low_bit.run(settings)
    assert found["data"] == "64 training and 100 test CIFAR-10 images"
    assert [(row["scheme"], row["distilled"]) for row in found["rows"]][2:] == [("binary", False), ("binary", True)]
    assert found["summary"]["binary"]["max_int8_values_per_channel"] == 2
    # 286,778 parameters, 285,888 of them in kernels: packed about 1/30 of float32 as on MNIST.
    assert 1 / 32 < found["summary"]["binary"]["packed_share_of_float32"] < 1 / 25
    text = low_bit.report({**found, "command": "c", "machine": "m"})
    assert text.startswith(
        "## Binary and ternary weights against int8 and 4-bit, with and without distillation on CIFAR-10"
    )
    assert "(`../shared/data/cifar10-15k.npz`)" in text and "286,778 parameters" in text
    assert "Plot: `benchmarks/results/low_bit_cifar10.png`" in text
    full = low_bit.LowBitSettings.for_cifar10()
    assert (full.dataset, full.float_epochs, full.finetune_epochs) == ("cifar10", 10, 3)
    with pytest.raises(ValueError, match="dataset must be one of mnist, cifar10. Received: dataset='svhn'"):
        low_bit.LowBitSettings(dataset="svhn").validate()


def test_every_stage_decays_its_rate_unless_the_settings_record_a_constant_one():
    from benchmarks import low_bit_run

    schedule = low_bit_run._schedule(low_bit.LowBitSettings(), 1e-3, 10)
    assert float(schedule(0)) == pytest.approx(1e-3) and float(schedule(10)) == pytest.approx(0.0)
    assert low_bit_run._schedule(low_bit.LowBitSettings(cosine=False), 1e-3, 10) == 1e-3
