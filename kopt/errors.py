"""The errors kopt raises for bad input and lost output, and how they quote a value."""

import reprlib

__all__ = ["ConfigError", "OutputError", "TrainingError", "first_line", "shown"]

# At most this many characters of a received value are quoted in a message: a
# value can be a whole file, a megabyte flag or a recursive YAML structure.
SHOWN_CHARACTERS = 160

_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxdict = _REPR.maxlist = _REPR.maxtuple = _REPR.maxset = 6
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlong = 40


def first_line(error, limit=200):
    """The first line of an exception's message, cut to ``limit`` characters; its type's name when it has none.

    Example:

    >>> first_line(ValueError("Header mismatch\\nmore detail")), first_line(KeyError())
    ('Header mismatch', 'KeyError')
    """
    text = str(error).strip()
    return text.splitlines()[0][:limit] if text else type(error).__name__


def shown(value, limit=SHOWN_CHARACTERS):
    """Returns ``value`` as text for a message, cut to about ``limit`` characters.

    Strings and numbers read as themselves; containers as a shortened
    ``repr``. The cost is bounded whatever the value's size or nesting.

    Example:

    >>> shown("adam")
    'adam'
    >>> shown("x" * 1000, limit=10)
    'xxxxxxxxxx... (1000 characters)'
    >>> shown({"a": [1, 2, 3, 4, 5, 6, 7, 8]})
    "{'a': [1, 2, 3, 4, 5, 6, ...]}"
    """
    if isinstance(value, str):
        if len(value) > limit:
            return f"{value[:limit]}... ({len(value)} characters)"
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 3 * limit:
        return f"<an integer of {value.bit_length()} bits>"  # str() of it alone could take seconds
    if isinstance(value, (bool, int, float, type(None))):
        text = str(value)
    else:
        text = _REPR.repr(value)
    return text if len(text) <= limit else f"{text[:limit]}..."


class ConfigError(ValueError):
    """A setting (flag, recipe key or argument) has a value kopt cannot use.

    The message always reads ``<key>=<value>: <reason>``, so the command-line binary
    can print it as one line and a Python caller sees what to change. The value is
    quoted through :func:`shown`, so a huge value never makes a huge message;
    :attr:`value` keeps the value itself.

    Args:
        key: The name of the setting, e.g. ``"--dataset"`` or ``"recipe.epochs"``.
        value: The value received.
        reason: What is wrong and, where possible, how to fix it.

    Example:

    >>> str(ConfigError("--batch_size", 0, "must be at least 1"))
    '--batch_size=0: must be at least 1'
    """

    def __init__(self, key, value, reason):
        self.key = key if isinstance(key, str) else shown(key)
        self.value = value
        self.reason = reason
        super().__init__(f"{self.key}={shown(value)}: {reason}")


class OutputError(OSError):
    """A file kopt was asked to write could not be written after the work was done.

    Raised only once everything that could be kept is kept; the message says where
    the trained files are. :attr:`report` holds the run's report (a dict), so a
    Python caller still has every figure.
    """

    def __init__(self, message, report=None):
        super().__init__(message)
        self.report = report


class TrainingError(RuntimeError):
    """Training produced a model that cannot be used, e.g. weights that are NaN.

    The message names the stage, the layer and what to change.
    """
