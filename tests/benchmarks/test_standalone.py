"""Tests for benchmarks/standalone.py: what the benchmarks outside the Suite template share."""

import json
import os

import pytest
from absl import app

from benchmarks import machine
from benchmarks import standalone


def test_stamp_records_the_command_as_typed_and_the_machine():
    document = standalone.stamp(
        {"rows": []}, "benchmarks.int8_ops", machine.describe_machine(), ["int8_ops.py", "--case=x y", "--rounds=2"]
    )
    assert document["command"] == "python -m benchmarks.int8_ops '--case=x y' --rounds=2"
    assert "cores" in document["machine"] and document["rows"] == []


def test_publish_writes_the_json_before_plot_and_report_and_only_the_named_section(tmp_path, capsys):
    output = str(tmp_path / "bench.json")
    markdown_path = tmp_path / "B.md"
    markdown_path.write_text("# Benchmarks\n")
    seen = []

    def plot(document, path):
        seen.append(("plot", os.path.isfile(output), path))

    def report(document):
        seen.append(("report", os.path.isfile(output)))
        return f"## Section\n\nrows: {len(document['rows'])}"

    body = standalone.publish(
        {"rows": [1, 2]}, output, report=report, section="bench", markdown_path=str(markdown_path), plot=plot
    )
    assert seen == [("plot", True, str(tmp_path / "bench.png")), ("report", True)]
    assert json.loads(open(output, encoding="utf-8").read()) == {"rows": [1, 2]}
    assert body in capsys.readouterr().out
    assert "rows: 2" in markdown_path.read_text()

    # Without a section (a --quick run) the markdown stays as it was.
    standalone.publish({"rows": []}, output, report=report, section=None, markdown_path=str(markdown_path))
    assert "rows: 2" in markdown_path.read_text() and "rows: 0" not in markdown_path.read_text()


def test_publish_keeps_the_measurements_when_the_report_fails(tmp_path):
    output = str(tmp_path / "bench.json")

    def report(document):
        raise KeyError("a missing field")

    with pytest.raises(KeyError):
        standalone.publish({"rows": [3]}, output, report=report)
    assert json.loads(open(output, encoding="utf-8").read()) == {"rows": [3]}


def test_check_choices_names_flag_unknown_values_and_choices():
    standalone.check_choices("models", ["LSTM"], {"LSTM": 1, "GRU": 2})
    with pytest.raises(
        app.UsageError, match=r"--models: unknown RNN; choose from LSTM, GRU\. Received: --models=LSTM,RNN"
    ):
        standalone.check_choices("models", ["LSTM", "RNN"], {"LSTM": 1, "GRU": 2})


def test_kept_rows_and_put_row_resume_a_run(tmp_path):
    path = str(tmp_path / "rows.json")
    assert standalone.kept_rows(path) == []
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"rows": [{"seed": 0, "acc": 0.1}, {"seed": 1, "acc": 0.2}]}, handle)
    rows = standalone.put_row(standalone.kept_rows(path), {"seed": 0, "acc": 0.3}, key=lambda row: row["seed"])
    assert rows == [{"seed": 1, "acc": 0.2}, {"seed": 0, "acc": 0.3}]
    assert standalone.put_row(rows, {"seed": 2, "acc": 0.4}, key=lambda row: row["seed"])[-1]["seed"] == 2


def test_docstring_examples_run():
    import doctest

    assert doctest.testmod(standalone).failed == 0


def test_a_quick_run_writes_its_own_files_and_no_section(tmp_path, capsys):
    markdown_path = tmp_path / "B.md"
    markdown_path.write_text("# Benchmarks\n")

    def report(document):
        return f"## Bench\\n\\nquick={document['quick']}"

    for quick in (True, False):
        standalone.publish_seeded_run(
            {"quick": quick},
            "bench",
            quick=quick,
            output_dir=str(tmp_path),
            markdown_path=str(markdown_path),
            report=report,
        )
    assert json.loads((tmp_path / "bench_quick.json").read_text()) == {"quick": True}
    assert json.loads((tmp_path / "bench.json").read_text()) == {"quick": False}
    text = markdown_path.read_text()
    assert "quick=False" in text and "quick=True" not in text


def test_run_rows_keeps_earlier_rows_replaces_a_remeasured_case_and_writes_after_each(tmp_path, capsys):
    output = tmp_path / "results.json"
    output.write_text(json.dumps({"command": "old", "rows": [{"seed": 0, "x": 1}, {"seed": 5, "x": 2}]}))
    document = tmp_path / "BENCHMARKS.md"
    document.write_text("# Benchmarks\n")
    seen = []

    def measure(seed, workdir):
        assert os.path.isdir(workdir)
        seen.append(json.loads(output.read_text())["rows"])  # what was saved before this row
        return {"seed": seed, "x": 10 * seed + 3}

    rows = standalone.run_rows(
        "demo",
        str(output),
        lambda workdir: [(0, workdir), (1, workdir)],
        measure,
        key=lambda r: r["seed"],
        report=lambda rows: f"rows: {len(rows)}",
        markdown_path=str(document),
    )
    assert rows == [{"seed": 5, "x": 2}, {"seed": 0, "x": 3}, {"seed": 1, "x": 13}]
    assert seen[1] == [{"seed": 5, "x": 2}, {"seed": 0, "x": 3}]  # seed 0 saved before seed 1 ran
    assert json.loads(output.read_text()) == {"command": "python -m benchmarks.demo", "rows": rows}
    assert "rows: 3" in document.read_text() and "rows: 3" in capsys.readouterr().out


def test_run_model_seeds_defines_the_flags_and_refuses_an_unknown_model(tmp_path):
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    output = tmp_path / "rows.json"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.time_folding", "--models=tagger,nope", "--seeds=0", f"--output={output}"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": root},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0 and not output.exists()
    assert "--models: unknown nope; choose from clip_cnn, frame_backbone, tagger" in result.stderr
