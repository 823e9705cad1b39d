"""Report table, JSON and PNG."""

import json

from kopt.pipeline import format_table
from kopt.pipeline import write_report


def _entry(accuracy, size):
    return {
        "keras_accuracy": accuracy,
        "tflite_accuracy": accuracy,
        "tflite_agreement": 1.0,
        "tflite_bytes": size,
        "tflite_gzip_bytes": size // 2,
        "params": 1234,
        "sparsity": 0.5,
        "tflite_mode": "int8",
    }


REPORT = {
    "dataset": {"name": "digits"},
    "techniques": ["x"],
    "baseline": _entry(0.97, 160000),
    "optimized": _entry(0.96, 40000),
}


def test_table_has_a_row_per_model_with_formatted_figures():
    lines = format_table(REPORT).splitlines()
    assert len(lines) == 4
    assert lines[2].startswith("baseline") and "0.9700" in lines[2] and "160,000" in lines[2]
    assert lines[3].startswith("optimized") and "20,000" in lines[3] and "int8" in lines[3]


def test_write_report_writes_json_and_a_png(tmp_path):
    json_path, png_path = write_report(REPORT, str(tmp_path / "r.json"))
    assert json.loads(open(json_path).read()) == REPORT
    with open(png_path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert png_path.endswith("r.png")
