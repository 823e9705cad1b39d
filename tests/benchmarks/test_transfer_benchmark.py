"""The knowledge-transfer benchmark in a few seconds: real CIFAR-10 images, a handful of steps."""

import dataclasses
import doctest
import json
import os
import sys

import keras
import numpy as np
import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from benchmarks import transfer  # noqa: E402
from benchmarks import transfer_diagnosis  # noqa: E402
from benchmarks import transfer_report  # noqa: E402
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
    assert [step for step, _ in row["source_curve"]] == [0, 2, 4]
    for arm in transfer_run.ARMS:
        # The warm starts get their own budget (3 steps here), the scratch model the full 4.
        assert [step for step, _ in row[f"{arm}_curve"]] == ([0, 2, 4] if arm == "scratch" else [0, 2, 3])
        assert all(0.0 <= value <= 1.0 for _, value in row[f"{arm}_curve"] + [[4, row[f"{arm}_final_moving_stats"]]])
        reached = row[f"{arm}_steps_to_scratch_final"]
        assert reached == transfer_run.steps_to_reach(row[f"{arm}_curve"], row["scratch_final"], 3)
    # The scratch final is the mean of its last 3 measurements, so scratch reaches it by its last step.
    assert row["scratch_final"] == pytest.approx(np.mean([value for _, value in row["scratch_curve"]]))
    assert row["scratch_steps_to_scratch_final"] is not None
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
    assert "transfer seed 0" in text and "net2net seed 0" not in text


def _row(seed, net2net, transfer_steps):
    curve = [[0, 0.1], [100, 0.5]]
    return {
        "seed": seed,
        "source_seconds": 2.0,
        "scratch_seconds": 4.0,
        "source_curve": curve,
        **{f"{arm}_curve": curve for arm in transfer_run.ARMS},
        **{f"{arm}_final_moving_stats": 0.4 for arm in transfer_run.ARMS},
        "scratch_steps_to_scratch_final": 100,
        "net2net_steps_to_scratch_final": net2net,
        "transfer_steps_to_scratch_final": transfer_steps,
        "net2net_exact_max_abs_diff": 1e-7,
    }


def test_a_start_that_reaches_at_step_0_counts_as_within_half(document):
    rows = [
        {**document["rows"][0], "seed": seed, "net2net_steps_to_scratch_final": reached}
        for seed, reached in ((0, 0), (1, None))
    ]
    text = transfer.report({**document, "rows": rows})
    assert "net2net seed 0 only (1 of 2)" in text


def test_the_must_hold_needs_every_seed_at_or_under_half():
    summary = transfer.summarize([_row(0, 100, 0), _row(1, 50, 50)], steps=200, window=3)
    assert summary["net2net_at_most_half"] and summary["transfer_at_most_half"]
    assert summary["scratch_final"]["mean"] == pytest.approx(0.3)  # the trailing mean of [0.1, 0.5]
    summary = transfer.summarize([_row(0, 100, None), _row(1, 101, 0)], steps=200, window=3)
    assert not summary["net2net_at_most_half"] and not summary["transfer_at_most_half"]
    assert summary["source_seconds_per_100_steps"] == 2.0 and summary["scratch_seconds_per_100_steps"] == 4.0


def test_steps_to_reach_and_settings_checks():
    for module in (transfer_run, transfer, transfer_report):
        assert doctest.testmod(module).failed == 0
    # A dip of the trailing mean below the target after reaching it starts the count again.
    curve = [[0, 0.2], [100, 0.6], [200, 0.6], [300, 0.6], [400, 0.1], [500, 0.9], [600, 0.9], [700, 0.9]]
    assert transfer_run.steps_to_reach(curve, 0.55, 3) == 600
    assert transfer_run.steps_to_reach(curve, 0.55, 1) == 500
    with pytest.raises(ValueError, match="steps must be at least 1"):
        dataclasses.replace(transfer.TransferSettings.quick(), steps=0).validate()


def test_every_run_decays_to_zero_by_the_end_of_its_own_budget():
    settings = transfer.TransferSettings.full()
    assert (settings.source_steps, settings.steps, settings.warm_steps) == (3600, 1200, 600)
    for arm, steps in (("source", 3600), ("scratch", 1200)):
        assert transfer_run.steps_for(arm, settings) == steps
        schedule = transfer_run.learning_rate_for(arm, settings)
        rates = [float(schedule(step)) for step in (0, steps // 2, steps)]
        assert rates[0] == pytest.approx(1e-3) and rates[1] == pytest.approx(5e-4, rel=1e-3)
        assert rates[2] == pytest.approx(0.0, abs=1e-9)
    assert transfer_run.steps_for("net2net", settings) == transfer_run.steps_for("transfer", settings) == 600
    for arm in ("net2net", "transfer"):
        schedule = transfer_run.learning_rate_for(arm, settings)
        rates = [float(schedule(step)) for step in (0, 15, 30, 315, 600)]
        peak = getattr(settings, f"{arm}_learning_rate")  # each warm start's own peak
        assert rates[0] == 0.0 and rates[1] == pytest.approx(peak / 2) and rates[2] == pytest.approx(peak)
        assert rates[3] == pytest.approx(peak / 2, rel=1e-3) and rates[4] == pytest.approx(0.0, abs=1e-9)
    other = dataclasses.replace(settings, net2net_learning_rate=1e-2)
    assert float(transfer_run.learning_rate_for("net2net", other)(30)) == pytest.approx(1e-2)
    assert float(transfer_run.learning_rate_for("transfer", other)(30)) == pytest.approx(
        settings.transfer_learning_rate
    )
    with pytest.raises(ValueError, match="the warm starts. Received: arm='scratch'"):
        transfer_run.finetune_rate("scratch", settings)
    with pytest.raises(ValueError, match="warm_steps must be at most steps.*warm_steps=700, steps=600"):
        dataclasses.replace(settings, steps=600, warm_steps=700).validate()


def test_recalibrated_accuracy_uses_the_calibration_statistics_and_puts_the_moving_ones_back(monkeypatch):
    inputs = keras.Input((2,))
    norm = keras.layers.BatchNormalization(momentum=0.99)
    model = keras.Model(inputs, keras.layers.Dense(2)(norm(inputs)))
    calibration = np.array([[1.0, 0.0], [3.0, 4.0], [2.0, 8.0], [10.0, -4.0]], np.float32)
    seen = []
    monkeypatch.setattr(
        transfer_run, "accuracy", lambda *args: seen.append([norm.moving_mean.numpy(), norm.moving_variance.numpy()])
    )
    transfer_run.recalibrated_accuracy(model, calibration, None, calibration, batch_size=3)  # batches of 3 and 1
    mean, variance = seen[0]
    np.testing.assert_allclose(mean, calibration.mean(0), rtol=1e-6)  # weighted by batch size: exact
    np.testing.assert_allclose(variance, 0.75 * calibration[:3].var(0) + 0.25 * 0.0, rtol=1e-5)
    assert norm.momentum == 0.99 and np.all(norm.moving_mean.numpy() == 0.0)
    assert np.all(norm.moving_variance.numpy() == 1.0)


def test_the_diagnosis_helpers():
    assert transfer_diagnosis.largest_drop([0.1, 0.5, 0.3, 0.6]) == pytest.approx(0.2)
    assert transfer_diagnosis.schedule(1e-3, "const") == 1e-3
    assert float(transfer_diagnosis.schedule(3e-4, "cos")(60)) == pytest.approx(3e-4)


def test_the_validation_sweep_measures_every_rate_on_training_images_only():
    from benchmarks import transfer_validation

    assert doctest.testmod(transfer_validation).failed == 0
    x_train, y_train, _, _ = transfer_validation.load_arrays(transfer.DATA, 160)
    data = transfer_validation.validation_split(x_train, y_train, 64)
    assert len(data[0]) == 96 and len(data[2]) == 64
    np.testing.assert_array_equal(data[2], x_train[96:])  # the split's held-out images, not the test set
    settings = dataclasses.replace(transfer.TransferSettings.quick(), steps=4, source_steps=4, eval_every=2)
    result = transfer_validation.sweep(settings, (1e-4, 1e-3), 0, data)
    assert set(result["figures"]["net2net"]) == {"0.0001", "0.001"} == set(result["figures"]["transfer"])
    assert [step for step, _ in result["curves"]["net2net@0.001"]] == [0, 2, 3]
    for arm in ("net2net", "transfer"):
        assert result["chosen"][arm] == transfer_validation.choose(result["figures"][arm])
    document = {"command": "c", "settings": settings.as_dict(), "data": "d", "result": result}
    assert "Chosen: net2net" in transfer_validation.report(document)
    with pytest.raises(ValueError, match="validation=160"):
        transfer_validation.validation_split(x_train, y_train, 160)


def test_the_section_quotes_the_validation_choice_only_if_the_settings_train_with_it(tmp_path):
    from absl import app

    settings = transfer.TransferSettings.full()
    result = {
        "seed": 0,
        "curves": {"source": [[0, 0.1], [3600, 0.6]]},
        "figures": {"scratch": 0.61, "net2net": {"0.001": 0.62}, "transfer": {"0.001": 0.6}},
        "chosen": {"net2net": 0.001, "transfer": 0.001},
    }
    settings = dataclasses.replace(settings, net2net_learning_rate=1e-3, transfer_learning_rate=1e-3)
    path = tmp_path / "v.json"
    path.write_text(json.dumps({"command": "c", "settings": settings.as_dict(), "data": "d", "result": result}))
    text = transfer.validation_paragraph(str(path), settings)
    assert "net2net 0.001 62.0%" in text and "Chosen: net2net 0.001, transfer 0.001." in text
    with pytest.raises(
        app.UsageError, match="chose \\{'net2net': 0.001\\}.*\\{'net2net': 0.0003, 'transfer': 0.001\\}"
    ):
        transfer.validation_paragraph(str(path), dataclasses.replace(settings, net2net_learning_rate=3e-4))
    with pytest.raises(app.UsageError, match="no file"):
        transfer.validation_paragraph(str(tmp_path / "gone.json"), settings)
