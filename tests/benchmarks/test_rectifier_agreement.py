"""The LeakyReLU/PReLU agreement benchmark on a few images: one row and the report."""

import pytest

from benchmarks import rectifier_agreement


@pytest.mark.parametrize("activation", ["prelu"])  # LeakyReLU's kernel is tested in tests/quantization
def test_one_row_measures_the_file_against_its_qat_model(tmp_path, activation):
    row = rectifier_agreement.measure(activation, 0, 1, str(tmp_path), max_train_examples=128, max_test_examples=64)
    assert row["fully_integer"] and row["train_examples"] == 128
    assert row["agreement"] == 1.0  # the emulated kernels compute the file
    assert 0.0 <= row["agreement_rounded_once"] <= 1.0
    text = rectifier_agreement.report([row])
    assert f"| {activation} | 1 | 0 |" in text and "100.00%" in text
