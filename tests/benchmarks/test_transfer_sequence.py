"""The recurrent Net2Net benchmark on a few digits: one seed's row, the report and the plot."""

from benchmarks import transfer_sequence


def test_one_seed_widens_exactly_trains_both_starts_and_reports(tmp_path, tiny_rows):
    data = tiny_rows(64, 20)
    settings = {"narrow": 4, "wide": 6, "source_steps": 4, "steps": 4, "eval_every": 2}
    row = transfer_sequence.run_seed(0, settings, data)
    assert row["widened_max_abs_diff"] < 1e-5
    assert [step for step, _ in row["curves"]["scratch"]] == [0, 2, 4]
    assert [step for step, _ in row["curves"]["net2net"]] == [0, 2]
    # The noisy widened source starts where the source ended, give or take the noise.
    assert abs(row["net2net_start"] - row["source_accuracy"]) <= 0.2
    assert row["within_half"] == (row["net2net_steps_to_reach"] is not None and row["net2net_steps_to_reach"] <= 2)
    # transfer_weights fills each of the 4 gates' first 4 of 6 units and the head's first 4 rows.
    assert [step for step, _ in row["curves"]["transfer"]] == [0, 2]
    copied = 28 * 16 + 4 * 16 + 16 + 4 * 10 + 10
    total = 28 * 24 + 6 * 24 + 24 + 6 * 10 + 10
    assert abs(row["transfer_share"] - copied / total) < 1e-9
    document = {"command": "python -m benchmarks.transfer_sequence", "machine": "m", "elapsed_min": 0.1,
                "settings": settings, "rows": [row]}  # fmt: skip
    text = transfer_sequence.report(document)
    assert "LSTM(4) -> Dense(10)" in text and f"| 0 | {100 * row['source_accuracy']:.2f} |" in text
    assert "transfer_weights on " in text
    transfer_sequence.plot(document, str(tmp_path / "curves.png"))
    assert (tmp_path / "curves.png").stat().st_size > 0
