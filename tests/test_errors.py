"""The errors' messages stay short and say what was received, whatever was received."""

import time

import pytest

from kopt.errors import SHOWN_CHARACTERS
from kopt.errors import ConfigError
from kopt.errors import OutputError
from kopt.errors import shown


def test_short_values_read_as_themselves():
    assert str(ConfigError("epochs", 0, "must be at least 1")) == "epochs=0: must be at least 1"
    assert str(ConfigError("dataset", "npz:x.npz", "file not found")) == "dataset=npz:x.npz: file not found"
    assert str(ConfigError("search.space", [1, 2], "bad")) == "search.space=[1, 2]: bad"


def test_a_huge_string_is_cut_and_its_length_given():
    error = ConfigError("dataset", "x" * 10_000_000, "unknown dataset")
    message = str(error)
    assert len(message) < SHOWN_CHARACTERS + 80
    assert "(10000000 characters)" in message and message.endswith(": unknown dataset")
    assert len(error.value) == 10_000_000  # the value itself is kept for a Python caller


def test_a_huge_shared_structure_is_quoted_in_bounded_time():
    # 9 levels of 9 references: 387 million leaves if printed in full.
    node = ["x"] * 9
    for _ in range(9):
        node = [node] * 9
    started = time.perf_counter()
    message = str(ConfigError("recipe", {"a": node}, "bad"))
    assert time.perf_counter() - started < 1.0
    assert len(message) < SHOWN_CHARACTERS + 20


def test_a_recursive_value_and_a_giant_integer_are_quoted():
    loop = []
    loop.append(loop)
    assert "[[[...]]]" in shown(loop) or "..." in shown(loop)
    assert shown(10**100_000).startswith("<an integer of ")
    assert shown(2**40) == str(2**40)


def test_a_non_string_key_is_shown_as_text():
    error = ConfigError(("a", 1), "v", "bad")
    assert error.key == "('a', 1)" and str(error).startswith("('a', 1)=v")


def test_output_error_carries_the_report():
    report = {"files": {"optimized_keras": "/tmp/x.keras"}}
    error = OutputError("could not write", report=report)
    assert error.report is report
    with pytest.raises(OSError):
        raise error
