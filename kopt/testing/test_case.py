"""kopt's own test harness for layers, schedules and other serializable objects.

Every public kopt class must survive ``get_config``/``from_config``, a JSON round
trip through Keras' serializer and a ``.keras`` save and load with no
``custom_objects``. One helper call checks each, so a new class gets the full check
from one line in its test. The helpers raise ``AssertionError`` with a message that
says what differed; they work under pytest and unittest alike.

Example:

>>> import keras
>>> restored = run_serialization_test(keras.layers.Dense(3), required_package=None)
>>> restored.units
3
"""

import json
import os
import tempfile
import unittest
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np


def run_serialization_test(
    obj: Any, *, init_kwargs: dict[str, Any] | None = None, required_package: str | None = "kopt"
) -> Any:
    """Round-trips ``obj`` through ``get_config`` and through JSON; returns the copy.

    Checks that ``from_config(get_config())`` rebuilds an object of the same type
    with an identical config, and that ``keras.saving.serialize_keras_object``
    output survives ``json.dumps``/``json.loads`` and deserializes with no
    ``custom_objects``.

    Args:
        obj: Any Keras-serializable object (layer, schedule, quantizer, callback...).
        init_kwargs: The constructor arguments ``obj`` was made with. Each must
            appear in ``get_config()`` with the same value: a config that forgets an
            argument rebuilds a different object, yet is consistent with itself.
        required_package: If set, the class must be registered with
            ``keras.saving.register_keras_serializable(package=required_package)``.

    Returns:
        The object rebuilt from JSON.
    """
    cls = type(obj)
    if required_package is not None:
        registered = keras.saving.get_registered_name(cls)
        if not registered.startswith(f"{required_package}>"):
            raise AssertionError(
                f"{cls.__name__} is not registered under package {required_package!r} "
                f"(registered name: {registered!r}); decorate it with "
                f"keras.saving.register_keras_serializable(package={required_package!r})"
            )
    config = obj.get_config()
    _require_json(config, f"{cls.__name__}.get_config()")
    _require_init_kwargs(init_kwargs or {}, config, cls.__name__)
    rebuilt = cls.from_config(config)
    if type(rebuilt) is not cls:
        raise AssertionError(f"{cls.__name__}.from_config returned {type(rebuilt).__name__}")
    _require_same_config(config, rebuilt.get_config(), f"{cls.__name__} after from_config")

    serialized = keras.saving.serialize_keras_object(obj)
    text = json.dumps(serialized)
    restored = keras.saving.deserialize_keras_object(json.loads(text))
    if type(restored) is not cls:
        raise AssertionError(f"JSON round trip of {cls.__name__} returned {type(restored).__name__}")
    _require_same_config(config, restored.get_config(), f"{cls.__name__} after JSON round trip")
    return restored


def run_model_saving_test(
    model: keras.Model, input_data: Any, *, atol: float = 1e-6, rtol: float = 1e-6
) -> keras.Model:
    """Saves ``model`` as ``.keras``, loads it with no ``custom_objects``, compares.

    Checks that the loaded model has the same class, the same weights (names, shapes,
    values, trainable or not) and the same outputs on ``input_data``.

    Args:
        model: A built ``keras.Model``.
        input_data: Inputs to compare outputs on.
        atol: Absolute tolerance for outputs and weights.
        rtol: Relative tolerance for outputs and weights.

    Returns:
        The loaded model.
    """
    expected = keras.ops.convert_to_numpy(model(input_data, training=False))
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "model.keras")
        model.save(path)
        loaded = keras.models.load_model(path)
    if type(loaded) is not type(model):
        raise AssertionError(f"saved {type(model).__name__}, loaded {type(loaded).__name__}")
    _require_same_weights(model, loaded, atol=atol, rtol=rtol)
    actual = keras.ops.convert_to_numpy(loaded(input_data, training=False))
    np.testing.assert_allclose(actual, expected, atol=atol, rtol=rtol, err_msg="outputs differ after .keras load")
    return loaded


def run_layer_test(
    layer_cls: type[keras.layers.Layer] | Callable[..., keras.layers.Layer],
    init_kwargs: dict[str, Any],
    input_data: np.ndarray,
    *,
    expected_output_shape: Sequence[int | None] | None = None,
    expected_num_trainable_weights: int | None = None,
    expected_num_non_trainable_weights: int | None = None,
    run_training_step: bool = True,
    required_package: str | None = "kopt",
) -> keras.layers.Layer:
    """The whole check of a layer class in one call.

    Builds the layer with ``init_kwargs``, calls it on ``input_data``, checks the
    output shape (also against ``compute_output_shape``) and weight counts, runs the
    serialization test, wraps it in a functional model that is trained for one step
    (gradients must reach every trainable weight) and saved and loaded as ``.keras``.

    Args:
        layer_cls: The layer class, or a callable returning a layer from kwargs.
        init_kwargs: Constructor arguments.
        input_data: A NumPy array batch to call the layer on.
        expected_output_shape: Output shape including batch, if it should be checked.
        expected_num_trainable_weights: Count to check, if given.
        expected_num_non_trainable_weights: Count to check, if given.
        run_training_step: Whether to fit one step and require finite gradients.
        required_package: As in :func:`run_serialization_test`.

    Returns:
        The built layer.
    """
    layer = layer_cls(**init_kwargs)
    output = keras.ops.convert_to_numpy(layer(input_data))
    if expected_output_shape is not None and tuple(output.shape) != tuple(expected_output_shape):
        raise AssertionError(f"output shape {tuple(output.shape)}, expected {tuple(expected_output_shape)}")
    if hasattr(layer, "compute_output_shape"):
        computed = tuple(layer.compute_output_shape(tuple(input_data.shape)))
        if computed != tuple(output.shape):
            raise AssertionError(f"compute_output_shape gave {computed}, call gave {tuple(output.shape)}")
    _require_count("trainable weights", layer.trainable_weights, expected_num_trainable_weights)
    _require_count("non-trainable weights", layer.non_trainable_weights, expected_num_non_trainable_weights)
    run_serialization_test(layer, init_kwargs=init_kwargs, required_package=required_package)

    inputs = keras.Input(shape=tuple(input_data.shape[1:]), batch_size=None, dtype=str(input_data.dtype))
    model = keras.Model(inputs, layer_cls(**init_kwargs)(inputs))
    if run_training_step and model.trainable_weights:
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
        target = np.zeros_like(keras.ops.convert_to_numpy(model(input_data)))
        before = [np.array(w.numpy()) for w in model.trainable_weights]
        try:
            model.fit(input_data, target, epochs=1, batch_size=len(input_data), verbose=0)
        except ValueError as err:
            if "No gradients" in str(err):
                raise AssertionError(f"gradients do not reach the layer's trainable weights: {err}") from err
            raise
        after = [np.array(w.numpy()) for w in model.trainable_weights]
        if not all(np.all(np.isfinite(w)) for w in after):
            raise AssertionError("training step produced non-finite weights")
        if all(np.array_equal(a, b) for a, b in zip(before, after)):
            raise AssertionError("training step changed no trainable weight; gradients do not reach the layer")
    run_model_saving_test(model, input_data)
    return layer


class TestCase(unittest.TestCase):
    """``unittest.TestCase`` with the kopt checks as methods (pytest runs it too)."""

    def run_serialization_test(self, obj: Any, **kwargs) -> Any:
        return run_serialization_test(obj, **kwargs)

    def run_model_saving_test(self, model: keras.Model, input_data: Any, **kwargs) -> keras.Model:
        return run_model_saving_test(model, input_data, **kwargs)

    def run_layer_test(
        self,
        layer_cls: type[keras.layers.Layer] | Callable[..., keras.layers.Layer],
        init_kwargs: dict[str, Any],
        input_data: np.ndarray,
        **kwargs,
    ) -> keras.layers.Layer:
        return run_layer_test(layer_cls, init_kwargs, input_data, **kwargs)


def _require_json(config, where):
    try:
        json.dumps(config)
    except TypeError as err:
        raise AssertionError(f"{where} is not JSON-serializable: {err}") from err


def _require_init_kwargs(init_kwargs, config, class_name):
    for key, value in init_kwargs.items():
        if key not in config:
            raise AssertionError(f"{class_name}.get_config() forgets constructor argument {key!r}")
        if isinstance(value, (bool, int, float, str, list, tuple, dict, type(None))):
            expected = json.loads(json.dumps(value))
            actual = json.loads(json.dumps(config[key]))
            if expected != actual:
                raise AssertionError(
                    f"{class_name}.get_config() has {key}={actual!r}, but it was constructed with {expected!r}"
                )


def _require_same_config(expected, actual, where):
    # Through JSON, so tuples and lists compare equal as they do after a save.
    expected_json = json.loads(json.dumps(expected, sort_keys=True))
    actual_json = json.loads(json.dumps(actual, sort_keys=True))
    if expected_json != actual_json:
        differing = sorted(
            key
            for key in set(expected_json) | set(actual_json)
            if expected_json.get(key, "<missing>") != actual_json.get(key, "<missing>")
        )
        raise AssertionError(f"config differs {where} in keys {differing}: {expected_json} != {actual_json}")


def _require_same_weights(model, loaded, *, atol, rtol):
    original = {w.path: w for w in model.weights}
    restored = {w.path: w for w in loaded.weights}
    if sorted(original) != sorted(restored):
        raise AssertionError(f"weights differ after load: {sorted(original)} != {sorted(restored)}")
    for path, weight in original.items():
        other = restored[path]
        if weight.trainable != other.trainable:
            raise AssertionError(f"weight {path} trainable={weight.trainable} became {other.trainable}")
        np.testing.assert_allclose(
            np.asarray(other.numpy()), np.asarray(weight.numpy()), atol=atol, rtol=rtol, err_msg=f"weight {path}"
        )


def _require_count(what, weights, expected):
    if expected is not None and len(weights) != expected:
        raise AssertionError(f"{len(weights)} {what}, expected {expected}: {[w.path for w in weights]}")
