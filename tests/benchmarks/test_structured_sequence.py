"""The recurrent structured-pruning benchmark on a few digits: its rows, report and plot."""

from benchmarks import structured_sequence


def test_rows_report_and_plot_on_a_tiny_run(tmp_path, tiny_rows):
    data = tiny_rows(128, 32)
    # 1.05x: the plan times the GRU on this machine, and under a loaded suite its loop's fixed share has left
    # no more than 1.16x reachable; a small ask keeps the test about the rows, not about the machine's timing.
    settings = {"float_epochs": 1, "finetune_epochs": 1, "shares": [0.5], "speedups": [1.05], "rounds": 1, "calls": 2}
    rows = structured_sequence.measure("GRU", 0, settings, str(tmp_path), data)
    assert [row["variant"] for row in rows] == ["float", "control", "units 50%", "latency 1.05x"]
    assert [row["units"] for row in rows[:3]] == [64, 64, 32] and rows[3]["units"] < 64
    assert rows[2]["params"] < rows[0]["params"] == rows[1]["params"]
    # The plan's own estimate rides along with its row, and only with it.
    assert rows[3]["modelled_speedup"] >= 1.05 and "modelled_speedup" not in rows[2]
    assert {row["latency_ratio"] for row in rows[:1]} == {1.0} and all(row["ms"] > 0 for row in rows)
    assert rows[1]["drop"] == 0.0
    document = {"command": "python -m benchmarks.structured_sequence", "machine": "m", "elapsed_min": 0.1,
                "settings": settings, "rows": rows}  # fmt: skip
    text = structured_sequence.report(document)
    assert "| GRU | units 50% | 32 | 1 |" in text and "| GRU | 0 | control |" in text
    assert f"| {rows[3]['modelled_speedup']:.2f}x / " in text
    structured_sequence.plot(document, str(tmp_path / "plot.png"))
    assert (tmp_path / "plot.png").stat().st_size > 0
