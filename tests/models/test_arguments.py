"""The shared argument checks of the built-in classifiers."""

import pytest

from kopt.models.arguments import check_classifier_arguments


def test_returns_the_shape_as_a_tuple():
    assert check_classifier_arguments([8, 8, 3], 2) == (8, 8, 3)


@pytest.mark.parametrize(
    "input_shape, num_classes, match",
    [
        ((8, 8), 10, r"input_shape=\(8, 8\)"),
        ((8, 0, 1), 10, r"input_shape=\(8, 0, 1\)"),
        ((8, True, 1), 10, "input_shape="),
        ((8, 8, 1), 1, "num_classes=1"),
        ((8, 8, 1), True, "num_classes=True"),
        ((8, 8, 1), 2.0, "num_classes=2.0"),
    ],
)
def test_bad_arguments_are_named(input_shape, num_classes, match):
    with pytest.raises(ValueError, match=match):
        check_classifier_arguments(input_shape, num_classes)
