"""The error kopt raises for bad user input: it names the setting and the value."""


class ConfigError(ValueError):
    """A setting (flag, recipe key or argument) has a value kopt cannot use.

    The message always reads ``<key>=<value>: <reason>``, so the command-line binary
    can print it as one line and a Python caller sees what to change.

    Args:
        key: The name of the setting, e.g. ``"--dataset"`` or ``"recipe.epochs"``.
        value: The value received.
        reason: What is wrong and, where possible, how to fix it.

    Example:

    >>> str(ConfigError("--epochs", 0, "must be at least 1"))
    '--epochs=0: must be at least 1'
    """

    def __init__(self, key, value, reason):
        self.key = key
        self.value = value
        self.reason = reason
        super().__init__(f"{key}={value}: {reason}")
