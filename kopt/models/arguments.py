"""The argument checks every built-in image classifier shares."""

from kopt.errors import ConfigError


def check_classifier_arguments(input_shape, num_classes):
    """Returns ``input_shape`` as a tuple; raises :class:`kopt.ConfigError` naming a bad argument.

    Args:
        input_shape: ``(height, width, channels)`` of positive ints.
        num_classes: An int of at least 2 (booleans are refused).

    Example:

    >>> check_classifier_arguments([28, 28, 1], 10)
    (28, 28, 1)
    """
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or any(not isinstance(d, int) or isinstance(d, bool) or d < 1 for d in input_shape):
        raise ConfigError("input_shape", input_shape, "must be (height, width, channels) of positive ints")
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
        raise ConfigError("num_classes", num_classes, "must be an int of at least 2")
    return input_shape
