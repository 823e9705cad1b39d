"""What :func:`kopt.transfer.transfer_weights` did to each weight of the target model.

Every weight of the target lands in one of three lists: ``copied`` (the source
weight had the same shape), ``partial`` (same rank, other sizes: the overlap was
copied, the rest kept the target's values) or ``skipped`` (left as it was, with
the reason). Layers of the source that no target layer matched are listed too.

Example:

>>> entry = WeightTransfer("dense", "kernel", (4, 8), "copied", "dense", (4, 8))
>>> report = TransferReport(copied=(entry,), partial=(), skipped=(), unused_source_layers=(), match="name")
>>> report.values_transferred, report.values_total
(32, 32)
>>> print(report.format().splitlines()[0])
transfer_weights (match by name): 1 weight copied, 0 partly copied, 0 skipped; 32 of 32 target values (100.0%) from the source
"""

import dataclasses
import json

__all__ = ["COPIED", "PARTIAL", "SKIPPED", "TransferReport", "WeightTransfer"]

COPIED = "copied"
PARTIAL = "partial"
SKIPPED = "skipped"
_STATUSES = (COPIED, PARTIAL, SKIPPED)


@dataclasses.dataclass(frozen=True)
class WeightTransfer:
    """One weight of the target model and what happened to it.

    Attributes:
        layer: The target layer's name.
        weight: The weight's name within its layer (``kernel``, ``moving_mean``,
            ``query/kernel`` for a sublayer's).
        target_shape: The target weight's shape.
        status: ``"copied"``, ``"partial"`` or ``"skipped"``.
        source_layer: The source layer matched to ``layer``, or ``None``.
        source_shape: The source weight's shape, or ``None`` when it has none.
        values: How many of the target's values now come from the source.
        reason: For ``skipped``, why; for ``partial``, which part was copied.
    """

    layer: str
    weight: str
    target_shape: tuple
    status: str
    source_layer: str | None = None
    source_shape: tuple | None = None
    values: int | None = None
    reason: str = ""

    def __post_init__(self):
        if self.status not in _STATUSES:
            raise ValueError(f"status must be one of {_STATUSES}. Received: status={self.status!r}")
        if self.values is None:
            object.__setattr__(self, "values", _size(self.target_shape) if self.status == COPIED else 0)

    @property
    def name(self) -> str:
        """``layer/weight``."""
        return f"{self.layer}/{self.weight}"

    def to_dict(self) -> dict:
        """The entry as JSON-ready plain data (shapes as lists)."""
        data = dataclasses.asdict(self)
        data["target_shape"] = list(self.target_shape)
        data["source_shape"] = None if self.source_shape is None else list(self.source_shape)
        return data


@dataclasses.dataclass(frozen=True)
class TransferReport:
    """The result of one :func:`kopt.transfer.transfer_weights` call.

    Attributes:
        copied: Weights copied whole, as :class:`WeightTransfer` entries.
        partial: Weights of which the overlap with the source was copied.
        skipped: Weights left as they were, each with its ``reason``.
        unused_source_layers: Source layers holding weights that no target
            layer was matched with.
        match: How layers were matched: ``"name"`` or ``"order"``.
    """

    copied: tuple
    partial: tuple
    skipped: tuple
    unused_source_layers: tuple
    match: str

    @property
    def values_transferred(self) -> int:
        """How many values of the target now come from the source."""
        return sum(entry.values for entry in self.copied + self.partial)

    @property
    def values_total(self) -> int:
        """How many values the target's weights hold."""
        return sum(_size(entry.target_shape) for entry in self.copied + self.partial + self.skipped)

    @property
    def transferred_any(self) -> bool:
        """Whether at least one weight was copied, wholly or in part."""
        return bool(self.copied or self.partial)

    def skipped_layers(self) -> dict:
        """``{layer: reason}``: the reason each layer with a skipped weight gives first."""
        reasons = {}
        for entry in self.skipped:
            reasons.setdefault(entry.layer, entry.reason)
        return reasons

    def to_dict(self) -> dict:
        """The report as JSON-ready plain data, with the counts first."""
        return {
            "match": self.match,
            "counts": {COPIED: len(self.copied), PARTIAL: len(self.partial), SKIPPED: len(self.skipped)},
            "values_transferred": self.values_transferred,
            "values_total": self.values_total,
            COPIED: [entry.to_dict() for entry in self.copied],
            PARTIAL: [entry.to_dict() for entry in self.partial],
            SKIPPED: [entry.to_dict() for entry in self.skipped],
            "unused_source_layers": list(self.unused_source_layers),
        }

    def to_json(self, indent: int | None = 2) -> str:
        """:meth:`to_dict` as JSON text."""
        return json.dumps(self.to_dict(), indent=indent)

    def format(self) -> str:
        """A few lines for a person: the counts, then what was partly copied or skipped, by layer."""
        total = self.values_total
        share = f"{100 * self.values_transferred / total:.1f}%" if total else "n/a"
        noun = "weight" if len(self.copied) == 1 else "weights"
        lines = [
            f"transfer_weights (match by {self.match}): {len(self.copied)} {noun} copied, "
            f"{len(self.partial)} partly copied, {len(self.skipped)} skipped; "
            f"{self.values_transferred:,} of {total:,} target values ({share}) from the source"
        ]
        for entry in self.partial:
            lines.append(
                f"  partial {entry.name} {_shape(entry.target_shape)} <- {entry.source_layer}/{entry.weight} "
                f"{_shape(entry.source_shape)}: {entry.reason}"
            )
        for layer, reason in self.skipped_layers().items():
            weights = ", ".join(entry.weight for entry in self.skipped if entry.layer == layer)
            lines.append(f"  skipped {layer} ({weights}): {reason}")
        if self.unused_source_layers:
            lines.append(f"  unused source layers: {', '.join(self.unused_source_layers)}")
        return "\n".join(lines)


def _size(shape):
    size = 1
    for dim in shape:
        size *= int(dim)
    return size


def _shape(shape):
    return "()" if shape is None else "(" + ", ".join(str(int(dim)) for dim in shape) + ")"
