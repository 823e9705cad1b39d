"""Hint (feature) distillation: match a student layer to a teacher layer.

FitNets (Romero et al., 2015) ask an intermediate student layer to predict a
teacher layer through a small learned regressor, since a thinner student's
features have fewer channels than the teacher's. :class:`FeatureAdapter` is that
regressor: a 1x1 convolution (image features) or a dense layer (vectors) from
the student's channels to the teacher's, with a bilinear resize when the
spatial sizes differ. The loss is the mean squared error between the adapted
student features and the teacher features. Keras' own ``FeatureDistillation``
compares the two layers directly and so needs identical shapes.
"""

from collections.abc import Sequence
from typing import Any

import keras

__all__ = ["FeatureAdapter", "feature_extractor", "feature_mse"]


@keras.saving.register_keras_serializable(package="kopt")
class FeatureAdapter(keras.layers.Layer):
    """Projects student features to the teacher's feature shape.

    For rank-4 ``(batch, height, width, channels)`` features: a bilinear resize
    to the teacher's height and width (when they differ), then a 1x1
    convolution to its channels. For rank-2 ``(batch, features)``: a dense
    layer. With ``identity=True`` (shapes already equal) it passes features
    through unchanged and has no weights.

    Args:
        target_shape: The teacher feature shape without the batch axis, e.g.
            ``(7, 7, 64)`` or ``(128,)``.
        identity: Pass the features through unchanged.
        **kwargs: Layer arguments (``name``...).

    Raises:
        ValueError: If ``target_shape`` is not 1 or 3 positive dimensions.

    Example:

    >>> import numpy as np
    >>> adapter = FeatureAdapter((4, 4, 8))
    >>> tuple(adapter(np.zeros((2, 8, 8, 3), "float32")).shape)
    (2, 4, 4, 8)
    """

    def __init__(self, target_shape: Sequence[int], identity: bool = False, **kwargs):
        super().__init__(**kwargs)
        target_shape = tuple(target_shape) if isinstance(target_shape, (list, tuple)) else target_shape
        if (
            not isinstance(target_shape, tuple)
            or len(target_shape) not in (1, 3)
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in target_shape)
        ):
            raise ValueError(
                "`target_shape` must be (features,) or (height, width, channels) of positive ints. "
                f"Received: target_shape={target_shape!r}"
            )
        self.target_shape = target_shape
        self.identity = bool(identity)
        self.resize = None
        self.projection = None

    def build(self, input_shape: Sequence[int | None]) -> None:
        input_shape = tuple(input_shape)
        if len(input_shape) != len(self.target_shape) + 1:
            raise ValueError(
                f"FeatureAdapter {self.name!r} maps to shape {self.target_shape} but its input has rank "
                f"{len(input_shape)}. Received: input_shape={input_shape}"
            )
        if self.identity:
            if input_shape[1:] != self.target_shape:
                raise ValueError(
                    f"FeatureAdapter {self.name!r} with identity=True needs inputs of shape {self.target_shape}. "
                    f"Received: input_shape={input_shape}"
                )
        elif len(self.target_shape) == 3:
            height, width, channels = self.target_shape
            if tuple(input_shape[1:3]) != (height, width):
                self.resize = keras.layers.Resizing(height, width, interpolation="bilinear", name="resize")
            self.projection = keras.layers.Conv2D(channels, 1, name="projection")
            self.projection.build((input_shape[0], height, width, input_shape[-1]))
        else:
            self.projection = keras.layers.Dense(self.target_shape[0], name="projection")
            self.projection.build(input_shape)

    def call(self, inputs: Any) -> Any:
        if self.identity:
            return inputs
        if self.resize is not None:
            inputs = self.resize(inputs)
        return self.projection(inputs)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return (input_shape[0], *self.target_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "target_shape": list(self.target_shape), "identity": self.identity}


def feature_mse(teacher_features: Any, student_features: Any) -> Any:
    """Mean squared error over every element; no gradient reaches the teacher.

    Args:
        teacher_features: Teacher activations.
        student_features: Adapted student activations of the same shape.

    Returns:
        A scalar.

    Example:

    >>> import numpy as np
    >>> float(feature_mse(np.ones((2, 3)), np.zeros((2, 3))))
    1.0
    """
    teacher_features = keras.ops.stop_gradient(keras.ops.convert_to_tensor(teacher_features))
    return keras.ops.mean(keras.ops.square(keras.ops.convert_to_tensor(student_features) - teacher_features))


def feature_extractor(model: keras.Model, layer_names: Sequence[str], *, who: str = "model") -> keras.Model:
    """A model returning ``[model output, *outputs of layer_names]``, sharing ``model``'s layers.

    Args:
        model: A functional or Sequential ``keras.Model`` with one output.
        layer_names: Names of layers in ``model``.
        who: How the model is named in errors (``"teacher"``, ``"student"``).

    Returns:
        A functional ``keras.Model``; calling it trains and updates the same
        variables as calling ``model``.

    Raises:
        ValueError: If ``model`` is not functional or a name is not one of its layers.

    Example:

    >>> inputs = keras.Input((4,))
    >>> hidden = keras.layers.Dense(3, name="hidden")(inputs)
    >>> model = keras.Model(inputs, keras.layers.Dense(2)(hidden))
    >>> [tuple(o.shape) for o in feature_extractor(model, ["hidden"]).outputs]
    [(None, 2), (None, 3)]
    """
    inputs = getattr(model, "inputs", None)
    if not inputs or len(model.outputs) != 1:
        raise ValueError(
            f"Feature distillation needs a functional or Sequential {who} model with one output. "
            f"Received: {who}={getattr(model, 'name', model)!r} of type {type(model).__name__}"
        )
    names = [layer.name for layer in model.layers]
    outputs = [model.outputs[0]]
    for layer_name in layer_names:
        if layer_name not in names:
            raise ValueError(
                f"{who.capitalize()} model {model.name!r} has no layer {layer_name!r}; its layers are {names}. "
                f"Received: {who}_layer={layer_name!r}"
            )
        outputs.append(model.get_layer(layer_name).output)
    return keras.Model(inputs, outputs, name=f"{model.name}_features")
