"""interleaved_latency: several files timed in turns, here or with AMX refused."""

import keras
import pytest

import tflite_export
from tflite_export.converter import convert
from tflite_export.interleaved import interleaved_latency


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("interleaved")
    paths = {}
    for width in (1, 256):
        model = keras.Sequential([keras.Input((256,)), keras.layers.Dense(width), keras.layers.Dense(width)])
        paths[f"w{width}"] = convert(model, str(folder / f"w{width}.tflite"))
    return paths


def test_every_file_gets_a_positive_time_under_its_own_key(files):
    times = interleaved_latency(files, rounds=3, calls=20, xnnpack=False)
    assert list(times) == ["w1", "w256"] and all(value > 0 for value in times.values())


def test_refusing_amx_times_the_same_files_in_a_child_where_the_cpu_has_it(files):
    times = interleaved_latency(files, rounds=2, calls=10, amx=False)
    assert list(times) == ["w1", "w256"] and all(value > 0 for value in times.values())
    assert tflite_export.interleaved_latency is interleaved_latency


@pytest.mark.parametrize(
    "options, needle",
    [
        ({"rounds": 0}, "rounds=0"),
        ({"calls": 1.5}, "calls=1.5"),
        ({"threads": True}, "threads=True"),
        ({"amx": "no"}, "amx='no'"),
    ],
)
def test_bad_settings_are_refused_naming_the_value(files, options, needle):
    with pytest.raises(ValueError, match=needle):
        interleaved_latency(files, **options)


def test_missing_files_and_an_empty_dict_are_refused(tmp_path):
    with pytest.raises(ValueError, match="do not exist"):
        interleaved_latency({"gone": str(tmp_path / "gone.tflite")})
    with pytest.raises(ValueError, match="paths=\\{\\}"):
        interleaved_latency({})


def test_a_file_the_interpreter_cannot_read_fails_loudly_here_and_in_the_child(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer")
    for amx in (True, False):
        with pytest.raises((RuntimeError, ValueError)):
            interleaved_latency({"bad": str(bad)}, rounds=1, calls=1, amx=amx)


def test_the_module_example_runs():
    import doctest

    from tflite_export import interleaved

    assert doctest.testmod(interleaved).failed == 0
