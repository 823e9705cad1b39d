"""Keras 3's own post-training quantization, ``model.quantize("int8")``, as a benchmark row.

Keras quantizes the weights of the layers that implement ``quantize`` (in Keras
3.15: ``Dense``, ``EinsumDense``, ``Embedding``) to int8 with one scale per output
channel, and quantizes their inputs on the fly at run time; every other layer
(``Conv2D`` here) stays float. :func:`quantize_int8` says which layers did what,
and :func:`export` tries to make a ``.tflite`` file of the result, first with
Keras' own LiteRT exporter (``model.export(format="litert")``), then with
``tflite_export.convert``, and reports each failure instead of inventing a file.
"""

import os


def quantize_int8(model, clone):
    """Quantizes ``clone(model)`` with ``model.quantize("int8")``.

    Args:
        model: A built float Keras model; left unchanged.
        clone: ``model -> copy with the same weights`` (Keras quantizes in place).

    Returns:
        ``(quantized, info)``; ``info`` holds ``quantized_layers`` and
        ``float_layers`` (``"name (Class)"`` of the layers with weights that
        were quantized, and that stayed float),
        ``params`` (``count_params()``, int8 kernels and their scales included)
        and ``weight_bytes`` before and after (bytes of every weight array).
    """
    import warnings

    quantized = clone(model)
    with warnings.catch_warnings():
        # Keras warns once per layer that has no quantize(); the info lists them.
        warnings.simplefilter("ignore", UserWarning)
        quantized.quantize("int8")
    layers = [layer for layer in quantized.layers if layer.weights]

    def described(quantized_ones):
        return [
            f"{layer.name} ({type(layer).__name__})"
            for layer in layers
            if bool(getattr(layer, "quantization_mode", None)) == quantized_ones
        ]

    return quantized, {
        "quantized_layers": described(True),
        "float_layers": described(False),
        "params": int(quantized.count_params()),
        "weight_bytes_float": _weight_bytes(model),
        "weight_bytes_int8": _weight_bytes(quantized),
    }


def export(quantized, path):
    """Tries Keras' LiteRT exporter, then ``tflite_export.convert``.

    Returns:
        ``(path or None, {"keras_litert": error or None, "tflite_export": error or None})``;
        an exporter not tried because the one before it succeeded is absent.
    """
    import tflite_export

    errors = {}
    try:
        quantized.export(path, format="litert", verbose=False)
        if os.path.isfile(path):
            errors["keras_litert"] = None
            return path, errors
        errors["keras_litert"] = "model.export wrote no file"
    except Exception as err:  # noqa: BLE001 - reported in the row, never hidden.
        errors["keras_litert"] = _first_error_line(err)
    try:
        tflite_export.convert(quantized, path, mode="float32")
        errors["tflite_export"] = None
        return path, errors
    except Exception as err:  # noqa: BLE001 - reported in the row, never hidden.
        errors["tflite_export"] = _first_error_line(err)
    return None, errors


def _weight_bytes(model):
    return int(sum(weight.numpy().nbytes for weight in model.weights))


def _first_error_line(err):
    """The converter's complaint without its MLIR call-site noise, at most 240 characters."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    useful = [line for line in lines if "error:" in line] or lines or [type(err).__name__]
    text = useful[0]
    if "error:" in text:
        text = text[text.index("error:") + len("error:") :].strip()
    if text.startswith("loc("):
        # 'loc(callsite(...)): message': the message follows the location's last "): ".
        text = text.rsplit("): ", 1)[-1]
    return f"{type(err).__name__}: {text}"[:240]
