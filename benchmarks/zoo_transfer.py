"""The conformance matrix's transfer cells: Net2Net's ``widen`` and ``deepen`` on each zoo model.

A cell picks the layer nearest the middle of the model that the operation accepts
(trying outward from the middle: the early and late layers of a network are its
special cases), grows the model there, checks that the grown model computes what the
model did, and converts it, so the matrix also checks that the file runs:

* ``widen``: a Dense, convolution or recurrent layer (a Bidirectional's two
  directions together; with every layer adding to the same residual stream or
  gate) gets half as many units again;
* ``deepen``: an identity layer after a layer's output, with the layer's own
  activation where it is idempotent, else a linear one.

Layers the operation refuses on the way are counted in the figures (``refused``),
and a model on which it refuses every layer is a refused cell whose detail names
the last refusal.
"""

import os

import numpy as np

import tflite_export
from kopt import transfer

__all__ = ["deepen_cell", "widen_cell"]

# The grown model against the model, relative to the outputs' scale: float32 sums in another order.
_TOLERANCE = 1e-4


def _middle_out(names):
    """``names`` ordered by distance from the middle one, nearest first."""
    middle = len(names) // 2
    return [names[index] for index in sorted(range(len(names)), key=lambda index: (abs(index - middle), index))]


def _grow(model, names, operation):
    refused = []
    for name in _middle_out(names):
        try:
            return name, operation(name), len(refused)
        except ValueError as err:
            refused.append(err)
    detail = f"; the last: {refused[-1]}" if refused else ""
    raise ValueError(f"{len(refused)} layer(s) tried, each refused{detail}")


def _figures(model, grown, x, y, workdir, check_file):
    expected = model.predict(x, verbose=0)
    difference = float(np.max(np.abs(grown.predict(x, verbose=0) - expected)))
    if difference > _TOLERANCE * max(float(np.max(np.abs(expected))), 1.0):
        raise AssertionError(f"the grown model's outputs differ from the model's by {difference:.3g}")
    path = tflite_export.convert(grown, os.path.join(workdir, "grown.tflite"))
    return {
        "keras_max_abs_diff": round(difference, 8),
        "params_ratio": round(grown.count_params() / model.count_params(), 3),
        **check_file(path, grown, x, y),
    }


def widen_cell(model, x, y, workdir, check_file):
    """Widens the widenable layer nearest the middle that ``widen`` accepts; see the module docstring."""
    names = [layer.name for layer in model.layers if type(layer).__name__ in transfer.WIDENABLE_LAYERS]

    def operation(name):
        layer = model.get_layer(name)
        config = getattr(layer, "forward_layer", layer).get_config()  # a Bidirectional's units are each direction's
        units = int(config.get("units") or config["filters"])
        return transfer.widen(model, name, units + max(units // 2, 1), seed=0)

    name, grown, refused = _grow(model, names, operation)
    return {"layer": name, "refused": refused, **_figures(model, grown, x, y, workdir, check_file)}


def deepen_cell(model, x, y, workdir, check_file):
    """Deepens after the layer nearest the middle that ``deepen`` accepts; see the module docstring."""
    names = [layer.name for layer in model.layers[1:]]

    def operation(name):
        try:
            return transfer.deepen(model, name)
        except ValueError as err:
            if "not idempotent" not in str(err):
                raise
            return transfer.deepen(model, name, activation="linear")

    name, grown, refused = _grow(model, names, operation)
    return {"layer": name, "refused": refused, **_figures(model, grown, x, y, workdir, check_file)}
