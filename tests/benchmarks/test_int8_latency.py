"""The int8 latency benchmark on a tiny network: four files, both settings, ratios to float."""

import os
import sys

import keras

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from benchmarks import int8_latency  # noqa: E402


def _tiny(side):
    return keras.Sequential([
        keras.Input((side, side, 3)), keras.layers.Conv2D(8, 3, activation="relu", name="stem"),
        keras.layers.DepthwiseConv2D(3), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4),
    ], name="tiny")  # fmt: skip


def test_measure_times_every_file_with_and_without_xnnpack(monkeypatch):
    monkeypatch.setitem(int8_latency.CASES, "tiny", int8_latency.image_case(_tiny, 12, 3, stem="stem"))
    row = int8_latency.measure("tiny", rounds=2)
    assert row["float32_xnnpack_ratio"] == 1.0 and row["float32_fully_integer"] == "n/a"
    for kind in int8_latency.FILES:
        assert row[f"{kind}_xnnpack_ms"] > 0 and row[f"{kind}_builtin_ms"] > 0
        if kind == "kopt_qat_int8_float_stem":
            assert row[f"{kind}_fully_integer"] is False  # the stem computes in float, on purpose
        elif kind == "kopt_qat_int8_float_prefix":
            # Whatever the plan picked on this machine: float layers make the file not fully integer.
            assert row[f"{kind}_fully_integer"] is (row["float_prefix"]["layers"] == 0)
        elif kind != "float32":
            assert row[f"{kind}_fully_integer"] is True
            assert row[f"{kind}_kib"] > 0
    text = int8_latency.report({"command": "c", "machine": "m", "cpu_extensions": [], "rounds": 2, "rows": [row]})
    assert text.count("| tiny | 12x12 |") == len(int8_latency.FILES)
    assert "converted up to seven ways" in text and "Float prefixes (`plan_float_prefix`" in text
    # A CPU with AMX: the XNNPACK files again, in a process that refuses it, each against its own float32.
    from tflite_export.amx import amx_state

    assert row["amx"] == amx_state()
    if row["amx"] == "absent":
        assert "float32_noamx_ms" not in row and "AMX refused" not in text
    else:
        assert row["float32_noamx_ratio"] == 1.0
        assert all(row[f"{kind}_noamx_ms"] > 0 for kind in int8_latency.FILES)
        assert "Intel AMX allowed and refused" in text and "| AMX refused ms | ratio |" in text


def test_the_report_adds_amx_columns_only_for_rows_that_have_them():
    row = {"case": "c", "input": "8x8", "float32_kib": 1.0, "float32_fully_integer": "n/a"}
    row.update({f"float32_{setting}_{what}": 1.0 for setting in ("xnnpack", "builtin") for what in ("ms", "ratio")})
    document = {"command": "c", "machine": "m", "cpu_extensions": ["amx_int8"], "rounds": 1, "rows": [row]}
    assert "AMX" not in int8_latency.report(document)
    row.update({"float32_noamx_ms": 0.5, "float32_noamx_ratio": 1.0})
    assert "| c | 8x8 | float32 | 1.0 | n/a | 1.0 | 1.0 | 1.0 | 1.0 | 0.5 | 1.0 |" in int8_latency.report(document)


def test_cpu_extensions_reads_the_flags_line(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n")
    assert int8_latency.cpu_extensions(str(cpuinfo)) == ["avx2", "avx512f", "avx512_vnni"]
    assert int8_latency.cpu_extensions(str(tmp_path / "missing")) == []


def test_sequence_cases_time_every_file_they_can_have(monkeypatch):
    """The Transformer encoder: no stem and no SavedModel per-tensor file, so three files; the report says so."""
    import dataclasses

    case = "transformer_encoder_49"
    monkeypatch.setitem(int8_latency.CASES, case, dataclasses.replace(int8_latency.CASES[case], calls=2))
    row = int8_latency.measure(case, rounds=1)
    assert row["input"] == "49 tokens" and row["float32_xnnpack_ratio"] == 1.0
    timed = [kind for kind in int8_latency.FILES if f"{kind}_xnnpack_ms" in row]
    assert timed == ["float32", "kopt_qat_int8", "converter_int8"]
    assert row["kopt_qat_int8_kib"] < row["float32_kib"] / 2  # int8 weights, whatever stays float
    document = {"command": "c", "machine": "m", "cpu_extensions": [], "rounds": 1, "rows": [row]}
    text = int8_latency.report(document)
    assert "The Transformer encoder and the LSTM of `benchmarks.sequence_agreement`" in text
    assert "keras.applications" not in text and text.count(f"| {case} | 49 tokens |") == 3
