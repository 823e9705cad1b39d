"""The knowledge-transfer benchmark in a few seconds: real CIFAR-10 images, a handful of steps."""

import dataclasses
import doctest
import json
import os
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from benchmarks import transfer  # noqa: E402
from benchmarks import transfer_run  # noqa: E402


@pytest.fixture(scope="module")
def document():
    if not os.path.isfile(transfer.DATA):
        pytest.fail(f"{transfer.DATA} is missing; the benchmark's test needs the shared data beside the checkout")
    settings = dataclasses.replace(
        transfer.TransferSettings.quick(), steps=4, source_steps=4, eval_every=2, max_train_examples=96
    )
    found = transfer.run(settings)
    return {**found, "command": "python -m benchmarks.transfer --quick", "machine": "test machine"}


def test_quick_run_measures_every_arm_and_keeps_the_net2net_function(document):
    (row,) = document["rows"]
    for arm in transfer_run.ARMS:
        assert [step for step, _ in row[f"{arm}_curve"]] == [0, 2, 4]
        assert all(0.0 <= value <= 1.0 for _, value in row[f"{arm}_curve"])
    assert row["net2net_exact_max_abs_diff"] < 1e-5
    # Every source weight fits the target (22 of them, 21 resized); only conv4's two are left random.
    assert row["transfer_report"]["counts"] == {"copied": 1, "partial": 21, "skipped": 2}
    assert row["transfer_report"]["skipped_layers"] == {"conv4": "no layer named 'conv4' in the source"}
    json.dumps(document)


def test_report_and_plot(document, tmp_path):
    text = transfer.report(document)
    assert "| 0 |" in text and "python -m benchmarks.transfer --quick" in text
    assert len([line for line in text.splitlines() if line.startswith("|")]) == 3  # header, separator, one seed
    path = transfer.plot(document, str(tmp_path / "transfer.png"))
    assert os.path.getsize(path) > 1000


def test_a_missed_must_hold_is_explained_from_the_figures(document):
    met = {**document, "summary": {**document["summary"], "net2net_at_most_half": True, "transfer_at_most_half": True}}
    assert "Why the must-hold is missed" not in transfer.report(met)
    missed = {**document, "summary": {**document["summary"], "transfer_at_most_half": False}}
    text = transfer.report(missed)
    assert "Why the must-hold is missed here" in text and "points (net2net)" in text


def _row(seed, net2net, transfer_steps):
    curve = [[0, 0.1], [100, 0.5]]
    return {
        "seed": seed,
        "source_seconds": 2.0,
        "scratch_seconds": 4.0,
        "source_curve": curve,
        **{f"{arm}_curve": curve for arm in transfer_run.ARMS},
        "net2net_steps_to_scratch_final": net2net,
        "transfer_steps_to_scratch_final": transfer_steps,
        "net2net_exact_max_abs_diff": 1e-7,
    }


def test_the_must_hold_needs_every_seed_at_or_under_half():
    summary = transfer.summarize([_row(0, 100, 0), _row(1, 50, 50)], steps=200)
    assert summary["net2net_at_most_half"] and summary["transfer_at_most_half"]
    summary = transfer.summarize([_row(0, 100, None), _row(1, 101, 0)], steps=200)
    assert not summary["net2net_at_most_half"] and not summary["transfer_at_most_half"]
    assert summary["source_seconds_per_100_steps"] == 2.0 and summary["scratch_seconds_per_100_steps"] == 4.0


def test_steps_to_reach_and_settings_checks():
    assert doctest.testmod(transfer_run).failed == 0 and doctest.testmod(transfer).failed == 0
    with pytest.raises(ValueError, match="steps must be at least 1"):
        dataclasses.replace(transfer.TransferSettings.quick(), steps=0).validate()
