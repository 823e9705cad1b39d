"""The transfer report: counts, JSON, and the lines a person reads."""

import json

import pytest

from kopt.transfer import TransferReport
from kopt.transfer import WeightTransfer


def _report():
    return TransferReport(
        copied=(WeightTransfer("conv", "bias", (8,), "copied", "conv", (8,)),),
        partial=(WeightTransfer("conv", "kernel", (3, 3, 2, 8), "partial", "conv", (3, 3, 2, 4), 72, "target[0:4]"),),
        skipped=(
            WeightTransfer("extra", "kernel", (8, 4), "skipped", reason="no layer named 'extra' in the source"),
            WeightTransfer("extra", "bias", (4,), "skipped", reason="no layer named 'extra' in the source"),
        ),
        unused_source_layers=("old_head",),
        match="name",
    )


def test_counts_and_values():
    report = _report()
    assert report.values_transferred == 8 + 72
    assert report.values_total == 8 + 144 + 32 + 4
    assert report.transferred_any and report.skipped_layers() == {"extra": "no layer named 'extra' in the source"}
    assert not TransferReport((), (), report.skipped, (), "order").transferred_any


def test_json_round_trips_with_shapes_as_lists():
    data = json.loads(_report().to_json())
    assert data["counts"] == {"copied": 1, "partial": 1, "skipped": 2}
    assert data["partial"][0]["source_shape"] == [3, 3, 2, 4] and data["skipped"][0]["source_shape"] is None
    assert data["unused_source_layers"] == ["old_head"] and data["values_transferred"] == 80


def test_format_lists_partial_and_skipped_by_layer():
    lines = _report().format().splitlines()
    assert lines[0] == (
        "transfer_weights (match by name): 1 weight copied, 1 partly copied, 2 skipped; "
        "80 of 188 target values (42.6%) from the source"
    )
    assert lines[1] == "  partial conv/kernel (3, 3, 2, 8) <- conv/kernel (3, 3, 2, 4): target[0:4]"
    assert lines[2] == "  skipped extra (kernel, bias): no layer named 'extra' in the source"
    assert lines[3] == "  unused source layers: old_head"


def test_an_unknown_status_is_refused():
    with pytest.raises(ValueError, match="Received: status='moved'"):
        WeightTransfer("conv", "bias", (8,), "moved")
