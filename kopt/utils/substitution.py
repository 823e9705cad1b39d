"""The base of kopt's training wrappers: run a layer with some weights' values replaced.

Pruning runs the wrapped layer with masked kernels, clustering with clustered
ones, QAT with fake-quantized ones. None of them changes the layer's code: a
``keras.StatelessScope`` maps each variable to the value the layer should see
for one call. :class:`SubstitutingWrapper` holds that mechanism and the
plumbing every such wrapper needs (building multi-input layers, passing
``training`` on, shapes and masks), so each technique's wrapper only computes
the values.
"""

import inspect
from collections.abc import Sequence
from typing import Any

import keras

__all__ = ["SubstitutingWrapper", "forward_input_shape", "symbolic_inputs"]


def forward_input_shape(wrapper: keras.layers.Layer, layer: keras.layers.Layer) -> None:
    """Gives ``wrapper`` the ``input_shape=`` its layer was built with, as Keras's own layers keep it.

    ``Sequential([prune_low_magnitude(Dense(20, input_shape=[20])), ...])`` then
    builds at once, as it does without the wrapper (tfmot's guides write it so).
    Keras keeps the argument in a private attribute; nothing else reads it.

    Example:

    >>> import keras, warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")  # Keras discourages input_shape=
    ...     dense = keras.layers.Dense(2, input_shape=(3,))
    >>> wrapper = keras.layers.Layer()
    >>> forward_input_shape(wrapper, dense)
    >>> wrapper._input_shape_arg
    (3,)
    """
    shape = getattr(layer, "_input_shape_arg", None)
    if shape is not None and getattr(wrapper, "_input_shape_arg", None) is None:
        wrapper._input_shape_arg = shape


class SubstitutingWrapper(keras.layers.Wrapper):
    """A ``keras.layers.Wrapper`` that calls its layer with substituted variable values.

    Subclasses compute ``{id(variable): value}`` in ``call`` and return
    ``self.call_with_values(values, inputs, *args, training=training, **kwargs)``.

    Example:

    >>> import keras, numpy as np
    >>> class Doubled(SubstitutingWrapper):
    ...     def call(self, inputs, training=None):
    ...         kernel = self.layer.kernel
    ...         return self.call_with_values({id(kernel): kernel.value * 2}, inputs, training=training)
    >>> dense = keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")
    >>> float(Doubled(dense)(np.ones((1, 3), "float32"))[0, 0])
    6.0
    """

    def __init__(self, layer: keras.layers.Layer, **kwargs) -> None:
        super().__init__(layer, **kwargs)
        self.supports_masking = layer.supports_masking
        forward_input_shape(self, layer)
        self._inner_call_parameters = inspect.signature(layer.call).parameters

    def __call__(self, *args, **kwargs) -> Any:
        if not self.layer.built:
            # Built by a symbolic call outside the wrapper's name scope, as loading
            # builds it when deserializing, so variable paths are the same either
            # way; this also builds layers with several inputs, which build() cannot.
            self.layer(*symbolic_inputs(args), **symbolic_inputs(kwargs))
        return super().__call__(*args, **kwargs)

    def call_with_values(
        self, values: dict[int, Any], inputs: Any, *args, training: bool | None = None, **kwargs
    ) -> Any:
        """Calls the wrapped layer with ``values`` (``{id(variable): tensor}``) in place.

        Args:
            values: The substituted values, keyed by ``id`` of the variable.
            inputs: The layer's inputs; ``args`` and ``kwargs`` follow them.
            training: Passed on if the wrapped layer's ``call`` takes it.

        Whatever the layer updated (BatchNormalization statistics, seeds) is
        assigned afterwards, and its losses are added to the wrapper's.
        """
        outputs, updates = self.run_with_values(values, inputs, *args, training=training, **kwargs)
        self.apply_updates(updates)
        return outputs

    def run_with_values(
        self,
        values: dict[int, Any],
        inputs: Any,
        *args,
        training: bool | None = None,
        extra_variables: Sequence[keras.Variable] = (),
        **kwargs,
    ) -> tuple[Any, tuple[list, list]]:
        """The first half of :meth:`call_with_values`: the call, with updates held back.

        ``extra_variables`` are variables outside the wrapped layer that code run
        inside it updates (QAT's activation ranges), collected likewise. Returns
        ``(outputs, updates)``; pass ``updates`` to :meth:`apply_updates`.

        Every variable is mapped, not only the substituted ones, so an enclosing
        stateless scope still sees its own values.
        """
        tracked = list(self.layer.variables) + list(extra_variables)
        mapping = [(variable, values.get(id(variable), variable.value)) for variable in tracked]
        with keras.StatelessScope(state_mapping=mapping, collect_losses=True) as scope:
            initial_values = [scope.get_current_value(variable) for variable, _ in mapping]
            outputs = self.layer(inputs, *args, **self._inner_kwargs(kwargs, training))
        updates = []
        for (variable, _), initial_value in zip(mapping, initial_values):
            new_value = scope.get_current_value(variable)
            if new_value is not initial_value:
                updates.append((variable, new_value))
        return outputs, (updates, list(scope.losses))

    def apply_updates(self, updates: tuple[list, list]) -> None:
        """Assigns the values and adds the losses that :meth:`run_with_values` held back."""
        assignments, losses = updates
        for variable, value in assignments:
            variable.assign(value)
        for loss in losses:
            self.add_loss(loss)

    def _inner_kwargs(self, kwargs, training=None):
        kwargs = dict(kwargs)
        if "training" in self._inner_call_parameters:
            kwargs["training"] = training
        else:
            kwargs.pop("training", None)
        return kwargs

    def compute_output_shape(self, *args, **kwargs) -> Any:
        return self.layer.compute_output_shape(*args, **kwargs)

    def compute_output_spec(self, *args, **kwargs) -> Any:
        return self.layer.compute_output_spec(*args, **self._inner_kwargs(kwargs, kwargs.get("training")))

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return self.layer.compute_mask(inputs, mask)


def symbolic_inputs(structure: Any) -> Any:
    """``structure`` with each tensor replaced by a ``KerasTensor`` of its shape and dtype."""
    return keras.tree.map_structure(
        lambda x: keras.KerasTensor(tuple(x.shape), dtype=x.dtype) if _is_tensor(x) else x, structure
    )


def _is_tensor(x):
    return hasattr(x, "shape") and hasattr(x, "dtype") and not isinstance(x, (int, float, bool))
