"""Sensitivity analysis: how much accuracy each layer loses when it alone is compressed.

For every prunable layer and every sparsity level, the layer's prunable weights
are pruned (by the chosen criterion) while every other layer stays as trained,
and the model is scored on the validation data, with no retraining. Each layer is
also quantized alone to 8 and 4 bits: its weights only, fake-quantized
symmetrically (per output channel for convolutions, per tensor for Dense, as
TFLite's int8 kernels do); activations stay in float. The cost is one evaluation
per layer and level, so it grows linearly with both; a progress bar shows it.

The table is what :func:`kopt.auto.allocate` reads (after Han et al. 2015, who
chose per-layer pruning thresholds from such curves). With ``cache_path`` it is
written as JSON and reused while the model weights, the data and the settings are
unchanged.

Example:

>>> import keras, numpy as np
>>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="d")])
>>> x, y = np.eye(4, dtype="float32"), np.array([0, 1, 2, 0])
>>> table = sensitivity(model, (x, y), sparsities=(0.5,), bits=(8,), verbose=0)
>>> table.layers, table.sparsities
(['d'], [0.5])
"""

import dataclasses
import hashlib
import json
import numbers
import os
import time
import zlib
from collections.abc import Iterable
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from kopt.auto import measure
from kopt.auto.data import as_arrays
from kopt.pruning import masks
from kopt.pruning import prunable
from kopt.quantization.fake_quant import fake_quant
from tflite_export.atomic import atomic_write_json

__all__ = ["DEFAULT_BITS", "DEFAULT_SPARSITIES", "SensitivityTable", "sensitivity"]

DEFAULT_SPARSITIES = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95)
DEFAULT_BITS = (8, 4)


@dataclasses.dataclass
class SensitivityTable:
    """Validation accuracy (percent) with one layer compressed at a time.

    Attributes:
        baseline_accuracy: The model's accuracy with nothing compressed.
        layers: Prunable layer names, in model order.
        sizes: ``{layer: number of prunable weights}``.
        sparsities: The sparsity levels tried, increasing.
        accuracy: ``{layer: [accuracy at each level]}``.
        bits: The weight bit-widths tried.
        quantized_accuracy: ``{layer: [accuracy at each bit-width]}``.
        criterion: ``"magnitude"`` or ``"random"``: how weights were chosen.
        num_classes: Classes of the model's output (0 if unknown), for the
            chance level of :meth:`default_fragile_drop`.
        key: Fingerprint of model, data and settings, for the cache.
        seconds: Wall time the analysis took.
    """

    baseline_accuracy: float
    layers: list
    sizes: dict
    sparsities: list
    accuracy: dict
    bits: list
    quantized_accuracy: dict
    criterion: str = "magnitude"
    num_classes: int = 0
    key: str = ""
    seconds: float = 0.0

    def drop(self, layer: str, sparsity: float) -> float:
        """Accuracy lost (points, >= 0) with ``layer`` alone at ``sparsity``.

        Linear between the measured levels (0 at sparsity 0), and never lower than
        at a smaller sparsity: a measured rise is noise, not a free lunch.
        """
        levels, drops = self.curve(layer)
        return float(np.interp(sparsity, levels, drops))

    def curve(self, layer: str) -> tuple:
        """``(levels, drops)`` with level 0 first, drops made non-decreasing."""
        if layer not in self.accuracy:
            raise ValueError(f"layer {layer!r} is not in the table; it has {self.layers}. Received: layer={layer!r}")
        levels = np.array([0.0, *self.sparsities])
        drops = np.maximum(0.0, self.baseline_accuracy - np.array([self.baseline_accuracy, *self.accuracy[layer]]))
        return levels, np.maximum.accumulate(drops)

    def default_fragile_drop(self) -> float:
        """Half the baseline's accuracy above chance, in points.

        A layer that alone, without retraining, loses more than that has lost
        most of what it computes; fine-tuning recovers smaller losses.
        """
        chance = 100.0 / self.num_classes if self.num_classes else 0.0
        return 0.5 * max(0.0, self.baseline_accuracy - chance)

    def safe_sparsity(self, layer: str, fragile_drop: float) -> float:
        """The highest sparsity, up to the last level measured, whose drop is <= ``fragile_drop``.

        Read off the (linear, non-decreasing) curve, so it may lie between levels.
        """
        levels, drops = self.curve(layer)
        beyond = np.nonzero(drops > fragile_drop + 1e-9)[0]
        if not beyond.size:
            return float(levels[-1])
        i = int(beyond[0])
        share = (fragile_drop - drops[i - 1]) / (drops[i] - drops[i - 1])
        return float(levels[i - 1] + share * (levels[i] - levels[i - 1]))

    def to_dict(self) -> dict:
        """The table as JSON-ready plain data."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "SensitivityTable":
        """Rebuilds a table from :meth:`to_dict` output."""
        return cls(**data)

    def format(self) -> str:
        """A text table: one row per layer, one column per level and bit-width."""
        header = ["layer", "weights", *[f"{s:.0%}" for s in self.sparsities], *[f"{b}-bit" for b in self.bits]]
        rows = [
            [name, str(self.sizes[name])]
            + [f"{a:.2f}" for a in self.accuracy[name]]
            + [f"{a:.2f}" for a in self.quantized_accuracy[name]]
            for name in self.layers
        ]
        widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
        lines = [f"baseline accuracy {self.baseline_accuracy:.2f}% (validation, nothing compressed)"]
        for row in [header, *rows]:
            lines.append("  ".join(str(cell).rjust(width) for cell, width in zip(row, widths)))
        return "\n".join(lines)


def sensitivity(
    model: keras.Model,
    val_data: tuple[np.ndarray, np.ndarray] | Iterable[tuple[Any, Any]],
    *,
    sparsities: Sequence[float] = DEFAULT_SPARSITIES,
    bits: Sequence[int] = DEFAULT_BITS,
    criterion: str = "magnitude",
    cache_path: str | None = None,
    batch_size: int = 512,
    verbose: int = 1,
) -> SensitivityTable:
    """Measures each prunable layer's accuracy curve, one layer at a time, no retraining.

    Args:
        model: A trained, plain (unwrapped) Keras classifier. It is not changed.
        val_data: Validation ``(images, labels)`` arrays or a dataset of batches.
            Never the test split: the table chooses what to compress.
        sparsities: Levels in ``(0, 1)`` to prune each layer to.
        bits: Weight bit-widths (2 to 16) to quantize each layer to.
        criterion: ``"magnitude"`` or ``"random"`` (which weights are pruned).
        cache_path: A ``.json`` file to reuse or write the table.
        batch_size: Evaluation batch size.
        verbose: 1 shows a progress bar, 0 is silent.

    Returns:
        A :class:`SensitivityTable`.

    Raises:
        ValueError: For bad levels, bit-widths, criterion or cache path, or a model
            with no prunable layer, before any evaluation.
    """
    sparsities = _levels(sparsities)
    bits = _bits(bits)
    if criterion not in masks.CRITERIA:
        raise ValueError(f"criterion must be one of {masks.CRITERIA}. Received: criterion={criterion!r}")
    if cache_path is not None and not str(cache_path).endswith(".json"):
        raise ValueError(f"cache_path must end in '.json'. Received: cache_path={cache_path!r}")
    layers = measure.prunable_layers(model)
    if not layers:
        raise ValueError(f"model {model.name!r} has no prunable layer. Received: model={model.name!r}")
    images, labels = as_arrays(val_data, name="val_data")
    key = _fingerprint(model, images, labels, sparsities, bits, criterion)
    cached = _read_cache(cache_path, key)
    if cached is not None:
        return cached

    started = time.perf_counter()
    progress = keras.utils.Progbar(len(layers) * (len(sparsities) + len(bits)), verbose=verbose)
    baseline = measure.accuracy(model, images, labels, batch_size=batch_size)
    accuracy, quantized = {}, {}
    for name, layer, _ in layers:
        weights = prunable.get_prunable_weights(layer)
        originals = [keras.ops.convert_to_numpy(weight.value) for weight in weights]
        try:
            accuracy[name] = []
            for level in sparsities:
                for weight, value in zip(weights, originals):
                    weight.assign(value * _mask(value, level, criterion, f"{name}/{weight.name}"))
                accuracy[name].append(measure.accuracy(model, images, labels, batch_size=batch_size))
                progress.add(1)
            quantized[name] = []
            for width in bits:
                for weight, value in zip(weights, originals):
                    weight.assign(_quantize_weights(value, width))
                quantized[name].append(measure.accuracy(model, images, labels, batch_size=batch_size))
                progress.add(1)
        finally:
            for weight, value in zip(weights, originals):
                weight.assign(value)
    table = SensitivityTable(
        baseline_accuracy=baseline,
        layers=[name for name, _, _ in layers],
        sizes={name: size for name, _, size in layers},
        sparsities=list(sparsities),
        accuracy=accuracy,
        bits=list(bits),
        quantized_accuracy=quantized,
        criterion=criterion,
        num_classes=int(model.outputs[0].shape[-1]) if getattr(model, "outputs", None) else 0,
        key=key,
        seconds=time.perf_counter() - started,
    )
    if cache_path is not None:
        atomic_write_json(cache_path, table.to_dict())
    return table


def _mask(value, level, criterion, name):
    if criterion == "random":
        mask, _ = masks.random_mask(value, level, zlib.crc32(name.encode()) & 0x7FFFFFFF)
    else:
        mask, _ = masks.magnitude_mask(value, level)
    return keras.ops.convert_to_numpy(mask)


def _quantize_weights(value, num_bits):
    """Symmetric fake quantization: per output channel for kernels of rank > 2."""
    if value.ndim > 2:
        limit = np.abs(value.reshape(-1, value.shape[-1])).max(axis=0)
        per_channel = True
    else:
        limit = np.abs(value).max()
        per_channel = False
    limit = np.maximum(limit, 1e-8).astype(np.float32)
    return keras.ops.convert_to_numpy(
        fake_quant(value, -limit, limit, num_bits=num_bits, narrow_range=True, per_channel=per_channel)
    )


def _levels(sparsities):
    values = list(sparsities) if isinstance(sparsities, (list, tuple)) else None
    if not values or any(isinstance(v, bool) or not isinstance(v, numbers.Real) or not 0 < v < 1 for v in values):
        raise ValueError(
            f"sparsities must be a non-empty list of numbers in (0, 1). Received: sparsities={sparsities!r}"
        )
    if sorted(set(values)) != values:
        raise ValueError(f"sparsities must be increasing, without repeats. Received: sparsities={sparsities!r}")
    return [float(v) for v in values]


def _bits(bits):
    values = list(bits) if isinstance(bits, (list, tuple)) else None
    if values is None or any(isinstance(b, bool) or not isinstance(b, int) or not 2 <= b <= 16 for b in values):
        raise ValueError(f"bits must be a list of integers from 2 to 16. Received: bits={bits!r}")
    return values


def _fingerprint(model, images, labels, sparsities, bits, criterion):
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight.value)).tobytes())
    digest.update(np.ascontiguousarray(images).tobytes())
    digest.update(np.ascontiguousarray(labels).tobytes())
    digest.update(json.dumps([sparsities, bits, criterion]).encode())
    return digest.hexdigest()[:32]


def _read_cache(cache_path, key):
    if cache_path is None or not os.path.isfile(cache_path):
        return None
    try:
        with open(cache_path, encoding="utf-8") as f:
            table = SensitivityTable.from_dict(json.load(f))
    except (OSError, ValueError, TypeError):
        return None  # An unreadable cache is recomputed and rewritten.
    return table if table.key == key else None
