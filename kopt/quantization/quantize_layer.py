"""QuantizeLayer: quantizes a float tensor entering the quantized part of a model.

Its range becomes the input scale of the TFLite file; :class:`QuantizeWrapper`
reads it as the grid of the layers after it.
"""

from typing import Any

import keras

from kopt.quantization import quantizers as quantizers_lib

__all__ = ["QuantizeLayer", "is_quantize_wrapper"]


@keras.saving.register_keras_serializable(package="kopt")
class QuantizeLayer(keras.layers.Layer):
    """Quantizes a float tensor entering the quantized part of a model.

    Args:
        quantizer: A :class:`kopt.quantization.Quantizer`; the default tracks a
            moving average of the tensor's range, asymmetric 8-bit.
        **kwargs: Base layer arguments.

    Example:

    >>> import numpy as np
    >>> layer = QuantizeLayer()
    >>> layer(np.array([[0.0, 1.0]], "float32"), training=True).shape
    TensorShape([1, 2])
    """

    def __init__(self, quantizer: quantizers_lib.Quantizer | dict[str, Any] | None = None, **kwargs):
        kwargs["autocast"] = False
        super().__init__(**kwargs)
        if isinstance(quantizer, dict):
            quantizer = keras.saving.deserialize_keras_object(quantizer)
        if quantizer is None:
            quantizer = quantizers_lib.MovingAverageQuantizer()
        if not isinstance(quantizer, quantizers_lib.Quantizer):
            raise ValueError(f"QuantizeLayer needs a kopt.quantization Quantizer. Received: quantizer={quantizer!r}")
        self.quantizer = quantizer

    def build(self, input_shape: tuple[int | None, ...] | None = None) -> None:
        self._ranges = self.quantizer.build(input_shape, "input", self)
        self.built = True

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        # In the file this is a QUANTIZE op on float data; LiteRT's XNNPACK rounds
        # its ties to even, where FakeQuant rounds them up. Images scaled as
        # x / 127.5 - 1 sit exactly on ties, so without this the file and the QAT
        # model disagree on half the pixels (see fake_quant's ``ties``).
        return self.quantizer(inputs, training, self._ranges, ties="even")

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "quantizer": keras.saving.serialize_keras_object(self.quantizer)}


def is_quantize_wrapper(operation):
    """Whether ``operation`` is a :class:`kopt.quantization.QuantizeWrapper` (or a subclass).

    The modules that link a wrapper to its neighbours' grids are imported by the
    wrapper's module, so they recognize wrappers by this class attribute instead
    of importing the class.
    """
    return getattr(type(operation), "quantizes_wrapped_layer", False) is True
