"""The .tflite file as C source for TFLite Micro: the exact bytes, aligned, with a header."""

import re
import shutil
import subprocess

import keras
import pytest

import tflite_export
from tflite_export.c_source import write_c_source


@pytest.fixture(scope="module")
def tflite_file(tmp_path_factory):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    return tflite_export.convert(model, str(tmp_path_factory.mktemp("m") / "m.tflite"), batch_size=1)


def test_the_array_holds_the_files_bytes_aligned_with_its_length(tflite_file, tmp_path):
    source, header = write_c_source(tflite_file, tmp_path / "model.cc", variable_name="g_dense")
    text = open(source).read()
    data = open(tflite_file, "rb").read()
    assert bytes(int(value, 16) for value in re.findall(r"0x([0-9a-f]{2}),", text)) == data
    assert "alignas(16) const unsigned char g_dense[] = {" in text
    assert f"const unsigned int g_dense_len = {len(data)};" in text
    assert '#include "model.h"' in text
    declared = open(header).read()
    assert "extern const unsigned char g_dense[];" in declared and "#ifndef MODEL_H" in declared


@pytest.mark.skipif(shutil.which("g++") is None, reason="no C++ compiler on this machine")
def test_the_source_compiles(tflite_file, tmp_path):
    source, _ = write_c_source(tflite_file, tmp_path / "model.cc")
    result = subprocess.run(
        ["g++", "-std=c++11", "-c", source, "-o", str(tmp_path / "model.o")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"variable_name": "2bad"}, "variable_name must be a C identifier. Received: variable_name='2bad'"),
        ({"alignment": 12}, "alignment must be a power of two, e.g. 16. Received: alignment=12"),
    ],
)
def test_bad_arguments_are_refused_before_writing(tflite_file, tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        write_c_source(tflite_file, tmp_path / "model.cc", **kwargs)
    assert not (tmp_path / "model.cc").exists() and not (tmp_path / "model.h").exists()


def test_output_must_be_cc(tflite_file, tmp_path):
    with pytest.raises(ValueError, match="must end in .cc or .cpp"):
        write_c_source(tflite_file, tmp_path / "model.c")
