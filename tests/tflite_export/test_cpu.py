"""The one reader of the CPU's feature flags."""

import doctest

import tflite_export
from tflite_export import cpu


def test_reads_the_x86_flags_line_and_only_it(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(
        "processor\t: 0\nmodel name\t: Test avx512f CPU\nflags\t\t: fpu sse avx avx2 amx_int8\n\n"
        "processor\t: 1\nflags\t\t: fpu\n"
    )
    # The model name's words are not flags; the first processor's line is read.
    assert tflite_export.cpu_flags(str(path)) == frozenset({"fpu", "sse", "avx", "avx2", "amx_int8"})


def test_reads_the_arm_features_line(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text("processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd asimddp i8mm\n")
    assert tflite_export.cpu_flags(str(path)) == frozenset({"fp", "asimd", "asimddp", "i8mm"})


def test_unreadable_or_flagless_is_none(tmp_path):
    assert tflite_export.cpu_flags(str(tmp_path / "missing")) is None
    path = tmp_path / "cpuinfo"
    path.write_text("processor\t: 0\nflagship\t: no\n")
    assert tflite_export.cpu_flags(str(path)) is None


def test_doctest():
    assert doctest.testmod(cpu).failed == 0
