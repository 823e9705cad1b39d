"""What every suite's settings dataclass shares: ``full()``, ``as_dict()`` and bound checks."""

import dataclasses

__all__ = ["SuiteSettings"]


class SuiteSettings:
    """A mixin of the suites' frozen settings dataclasses.

    The settings travel to the tfmot workers as JSON (:meth:`as_dict`), so both
    sides read the same numbers; :meth:`full` gives the benchmark's figures'
    settings, a subclass's ``quick()`` those of a smoke run.

    Example:

    >>> @dataclasses.dataclass(frozen=True)
    ... class Tiny(SuiteSettings):
    ...     epochs: int = 2
    >>> Tiny.full().as_dict()
    {'epochs': 2}
    """

    @classmethod
    def full(cls):
        """The settings of the benchmark's own figures: the defaults."""
        return cls()

    def as_dict(self):
        """The settings as a JSON-ready dict."""
        return dataclasses.asdict(self)

    def require_at_least_one(self, *names):
        """Raises ``ValueError`` naming the first of ``names`` whose value is below 1."""
        for name in names:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1. Received: {name}={getattr(self, name)}")
