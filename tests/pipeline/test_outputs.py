"""Output paths are proven writable before training; a report that fails at the end is kept."""

import json
import os

import pytest

from kopt.errors import ConfigError
from kopt.errors import OutputError
from kopt.pipeline import Recipe
from kopt.pipeline import outputs

# /proc takes no new files, even for root, so it stands in for a read-only mount.
READ_ONLY = "/proc"


def _check(tmp_path, **settings):
    outputs.check_output_paths(Recipe(**settings))
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".kopt-write-probe")]


def test_fresh_and_existing_folders_pass_and_nothing_is_created(tmp_path):
    _check(tmp_path, export_dir=str(tmp_path / "new" / "deeper"), report=str(tmp_path / "r" / "report.json"))
    assert os.listdir(tmp_path) == []
    _check(tmp_path, export_dir=str(tmp_path), report=str(tmp_path / "report.json"))


@pytest.mark.parametrize(
    "settings, key, reason",
    [
        (lambda tmp: {"export_dir": str(tmp / "a_file")}, "export_dir", "is a file"),
        (lambda tmp: {"export_dir": str(tmp / "a_file" / "out")}, "export_dir", "which is a file"),
        (lambda tmp: {"export_dir": f"{READ_ONLY}/kopt_out"}, "export_dir", "cannot create files in"),
        (lambda tmp: {"report": str(tmp / "dir.json")}, "report", "is a folder"),
        (lambda tmp: {"report": str(tmp / "a_file" / "r.json")}, "report", "its folder"),
        (lambda tmp: {"report": f"{READ_ONLY}/r.json"}, "report", "cannot create files in"),
    ],
)
def test_unwritable_outputs_are_refused_naming_the_setting(tmp_path, settings, key, reason):
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(ConfigError) as caught:
        outputs.check_output_paths(Recipe(**settings(tmp_path)))
    assert caught.value.key == key and reason in caught.value.reason, str(caught.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(ConfigError, match="cannot create files in"):
            outputs.check_output_paths(Recipe(export_dir=str(locked)))
    finally:
        locked.chmod(0o700)


def _result(tmp_path):
    keras_path = str(tmp_path / "export" / "optimized.keras")
    row = {"keras_accuracy": 0.9, "tflite_accuracy": 0.9, "tflite_bytes": 10, "tflite_gzip_bytes": 5, "params": 3}
    return {
        "dataset": {"name": "digits"},
        "techniques": [],
        "baseline": dict(row),
        "optimized": dict(row),
        "recipe": Recipe().to_dict(),
        "timings_s": {},
        "files": {"optimized_keras": keras_path},
    }


def test_a_report_that_fails_at_the_end_is_written_beside_the_models(tmp_path):
    (tmp_path / "export").mkdir()
    result = _result(tmp_path)
    # The report's folder became a file after the check (a race, or a full disk).
    (tmp_path / "gone").write_text("x")
    with pytest.raises(OutputError) as caught:
        outputs.write_report_or_keep(result, str(tmp_path / "gone" / "r.json"), str(tmp_path / "export"))
    message = str(caught.value)
    fallback = tmp_path / "export" / "report.json"
    assert f"written to {fallback} instead" in message
    assert "optimized_keras: " + result["files"]["optimized_keras"] in message
    assert json.loads(fallback.read_text())["optimized"]["tflite_accuracy"] == 0.9
    assert caught.value.report is result and result["files"]["report_json"] == str(fallback)


def test_a_report_written_normally_lists_its_files(tmp_path):
    result = _result(tmp_path)
    outputs.write_report_or_keep(result, str(tmp_path / "r.json"), str(tmp_path / "export"))
    assert result["files"]["report_json"] == str(tmp_path / "r.json")
    assert (tmp_path / "r.png").stat().st_size > 0


def test_a_run_whose_report_fails_at_the_end_keeps_models_and_report(tmp_path, monkeypatch):
    from kopt.pipeline import report as report_lib
    from kopt.pipeline import run

    real = report_lib.write_report
    wanted = str(tmp_path / "reports" / "r.json")

    def full_disk(report, path):
        if path == wanted:
            raise OSError(28, "No space left on device")
        return real(report, path)

    monkeypatch.setattr(report_lib, "write_report", full_disk)
    export_dir = tmp_path / "out"
    with pytest.raises(OutputError, match=r"could not write the report to .*r\.json \(No space left on device\)"):
        run(Recipe(epochs=1, export_dir=str(export_dir), report=wanted))
    kept = json.loads((export_dir / "report.json").read_text())
    assert kept["files"]["optimized_keras"] == str(export_dir / "optimized.keras")
    for name in ("baseline.keras", "optimized.keras", "baseline.tflite", "optimized.tflite"):
        assert (export_dir / name).stat().st_size > 0
