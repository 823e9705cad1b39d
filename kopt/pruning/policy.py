"""Pruning policies: which layers of a model to wrap, and which models to accept.

``PruneForLatencyOnXNNPack`` reproduces tfmot's policy for XNNPACK sparse
inference (Elsen et al. 2019, "Fast Sparse ConvNets"): XNNPACK runs a sparse
NCHW subgraph that must start with a 3x3, stride-2 convolution over 3 input
channels and end at a global average pooling, with only layers it supports in
between; its sparse kernels speed up 1x1 convolutions only, so only those are
pruned. A model that cannot run that way is refused before any layer is wrapped.

The model's wiring is read from ``model.get_config()`` (its public serialized
form), with nested Sequential and functional models inlined.

Example:

>>> import keras
>>> PruneForLatencyOnXNNPack().allow_pruning(keras.layers.Conv2D(8, 1))
True
"""

import abc
from typing import Any

import keras

from kopt.pruning.strip import PRUNE_ADVICE
from kopt.pruning.wrapper import PruneLowMagnitude
from tflite_export.cloning import require_graph_model

__all__ = ["PruneForLatencyOnXNNPack", "PruningPolicy"]


class PruningPolicy(abc.ABC):
    """Decides which layers ``prune_low_magnitude`` wraps, and checks the model.

    Subclass it and pass an instance as ``pruning_policy=``.

    Example:

    >>> class DenseOnly(PruningPolicy):
    ...     def allow_pruning(self, layer):
    ...         return isinstance(layer, keras.layers.Dense)
    ...     def ensure_model_supports_pruning(self, model):
    ...         pass
    >>> DenseOnly().allow_pruning(keras.layers.Dense(2))
    True
    """

    @abc.abstractmethod
    def allow_pruning(self, layer: keras.layers.Layer) -> bool:
        """Whether to wrap ``layer`` (called for each layer of the model).

        Args:
            layer: A layer of the model being pruned.

        Returns:
            True to prune the layer.
        """

    @abc.abstractmethod
    def ensure_model_supports_pruning(self, model: keras.Model) -> None:
        """Raises ``ValueError`` if the policy cannot be applied to ``model``.

        Args:
            model: The model passed to ``prune_low_magnitude``.

        Raises:
            ValueError: If the model does not suit the policy.
        """

    def get_config(self) -> dict[str, Any]:
        """Returns the constructor arguments (none for the built-in policy)."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "PruningPolicy":
        return cls(**config)


@keras.saving.register_keras_serializable(package="kopt")
class PruneForLatencyOnXNNPack(PruningPolicy):
    """Prunes only 1x1 Conv2D layers, of models XNNPACK can run sparsely.

    The model must, on every input branch, reach a stem convolution: a Conv2D
    with a 3x3 kernel, stride 2 and 3 input channels, either with
    ``padding="valid"`` right after ``ZeroPadding2D(1)`` (tfmot's form) or with
    ``padding="same"``. Every output branch must go back to a
    GlobalAveragePooling2D, and every layer in between must be one XNNPACK's
    sparse path supports: 1x1 stride-1 Conv2D, 3x3 or 5x5 DepthwiseConv2D (stride
    1 or 2, "same" padding or a matching ZeroPadding2D), BatchNormalization over
    channels, ReLU/ReLU6/LeakyReLU/ELU/sigmoid activations, Add, Multiply,
    Dropout, ZeroPadding2D, bilinear UpSampling2D, GlobalAveragePooling2D with
    ``keepdims=True``.

    Raises:
        ValueError: From ``ensure_model_supports_pruning``, naming what is missing
            or the first unsupported layer.

    Example:

    >>> import keras
    >>> from kopt.pruning import prune_low_magnitude
    >>> inputs = keras.Input((32, 32, 3))
    >>> x = keras.layers.Conv2D(8, 3, strides=2, padding="same")(inputs)
    >>> x = keras.layers.Conv2D(16, 1)(x)
    >>> outputs = keras.layers.GlobalAveragePooling2D()(x)
    >>> pruned = prune_low_magnitude(keras.Model(inputs, outputs),
    ...                              pruning_policy=PruneForLatencyOnXNNPack())
    >>> [type(layer).__name__ for layer in pruned.layers[1:]]
    ['Conv2D', 'PruneLowMagnitude', 'GlobalAveragePooling2D']
    """

    def allow_pruning(self, layer: keras.layers.Layer) -> bool:
        layer = _unwrap(layer)
        return type(layer) is keras.layers.Conv2D and tuple(layer.kernel_size) == (1, 1)

    def ensure_model_supports_pruning(self, model: keras.Model) -> None:
        require_graph_model(model, action="prune", advice=PRUNE_ADVICE)
        graph = _LayerGraph(model)
        starts = graph.search(graph.inputs, lambda key: self._is_stem(graph, key), graph.consumers)
        if not starts:
            raise ValueError(
                f"Model {model.name!r} does not suit PruneForLatencyOnXNNPack: every input branch must reach a "
                "Conv2D with a 3x3 kernel, stride 2 and 3 input channels, with padding='same' or with "
                "padding='valid' after ZeroPadding2D(1)."
            )
        ends = graph.search(
            graph.outputs,
            lambda key: isinstance(graph.layer(key), keras.layers.GlobalAveragePooling2D),
            graph.producers,
        )
        if not ends:
            raise ValueError(
                f"Model {model.name!r} does not suit PruneForLatencyOnXNNPack: every output branch must come "
                "from a GlobalAveragePooling2D layer."
            )

        def check(key):
            if key not in ends and not self._is_supported(graph, key):
                layer = graph.layer(key)
                kind = "Layer" if isinstance(layer, keras.layers.Layer) else "Operation"
                raise ValueError(
                    f"{kind} {layer.name!r} ({type(layer).__name__}) is not supported by XNNPACK sparse inference, "
                    "so the PruneForLatencyOnXNNPack policy cannot be applied to this model."
                )
            return key in ends

        graph.search({c for key in starts for c in graph.consumers(key)}, check, graph.consumers)

    def _is_stem(self, graph, key):
        layer = graph.layer(key)
        if type(layer) is not keras.layers.Conv2D or not layer.built:
            return False
        shape_ok = tuple(layer.kernel.shape[:3]) == (3, 3, 3) and tuple(layer.strides) == (2, 2)
        if layer.padding == "same":
            return shape_ok
        producers = graph.producers(key)
        padding = graph.layer(next(iter(producers))) if len(producers) == 1 else None
        return shape_ok and isinstance(padding, keras.layers.ZeroPadding2D) and _padding(padding) == ((1, 1), (1, 1))

    def _is_supported(self, graph, key):
        layer = graph.layer(key)
        simple = (
            keras.layers.Add,
            keras.layers.Multiply,
            keras.layers.ZeroPadding2D,
            keras.layers.ReLU,
            keras.layers.LeakyReLU,
            keras.layers.ELU,
            keras.layers.Dropout,
            keras.layers.Identity,
        )
        if isinstance(layer, simple):
            return True
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            return self._depthwise_supported(graph, key, layer)
        if type(layer) is keras.layers.Conv2D:
            return (
                layer.groups == 1
                and tuple(layer.dilation_rate) == (1, 1)
                and tuple(layer.kernel_size) == (1, 1)
                and tuple(layer.strides) == (1, 1)
            )
        if isinstance(layer, keras.layers.GlobalAveragePooling2D):
            return bool(layer.keepdims)
        if isinstance(layer, keras.layers.BatchNormalization):
            return layer.axis in (-1, 3, [-1], [3])
        if isinstance(layer, keras.layers.UpSampling2D):
            return layer.interpolation == "bilinear"
        if isinstance(layer, keras.layers.Activation):
            return getattr(layer.activation, "__name__", "") in ("relu", "relu6", "leaky_relu", "elu", "sigmoid")
        return False

    def _depthwise_supported(self, graph, key, layer):
        if layer.depth_multiplier != 1 or tuple(layer.dilation_rate) != (1, 1):
            return False
        size, strides = tuple(layer.kernel_size), tuple(layer.strides)
        if size not in ((3, 3), (5, 5)):
            return False
        if layer.padding == "same":
            return strides == (1, 1)
        producers = graph.producers(key)
        padding = graph.layer(next(iter(producers))) if len(producers) == 1 else None
        pad = size[0] // 2
        return (
            strides in ((1, 1), (2, 2))
            and isinstance(padding, keras.layers.ZeroPadding2D)
            and _padding(padding) == ((pad, pad), (pad, pad))
        )


class _LayerGraph:
    """Producer/consumer links between the leaf layers of a model."""

    def __init__(self, model):
        self._layers = {}
        self._producers = {}
        self._consumers = {}
        self.outputs = self._add_model(model, "", set())
        self.inputs = {key for key, producers in self._producers.items() if not producers}
        for key, producers in self._producers.items():
            for producer in producers:
                self._consumers.setdefault(producer, set()).add(key)

    def layer(self, key):
        return _unwrap(self._layers[key])

    def producers(self, key):
        return self._producers.get(key, set())

    def consumers(self, key):
        return self._consumers.get(key, set())

    def search(self, sources, stop, next_keys):
        """Keys where ``stop`` holds, reached from ``sources``; empty if a branch never stops."""
        to_visit, seen, found = set(sources), set(sources), set()
        while to_visit:
            key = to_visit.pop()
            if stop(key):
                found.add(key)
                continue
            following = next_keys(key)
            if not following:
                return set()
            for other in following - seen:
                seen.add(other)
                to_visit.add(other)
        return found

    def _add(self, key, layer, producers):
        self._layers[key] = layer
        self._producers[key] = set(producers)
        return {key}

    def _add_model(self, model, prefix, producers):
        """Adds ``model``'s layers; returns the keys of its output layers."""
        if isinstance(model, keras.Sequential):
            current = self._add(f"{prefix}input", keras.layers.Identity(), producers)
            for layer in model.layers:
                current = self._add_layer(layer, f"{prefix}{layer.name}", current)
            return current
        require_graph_model(model, action="prune", advice=PRUNE_ADVICE)
        config = model.get_config()
        # Operations cover layers and keras.ops nodes (``x + 3.0``), which get_layer does not find.
        nodes = {node.name: node for node in model.operations}
        aliases = {}
        for entry in config["layers"]:
            name = entry["name"]
            inbound = {
                aliased for source in _history_names(entry.get("inbound_nodes", [])) for aliased in aliases[source]
            }
            if entry["class_name"] == "InputLayer":
                aliases[name] = self._add(f"{prefix}{name}", nodes[name], producers)
            else:
                aliases[name] = self._add_layer(nodes[name], f"{prefix}{name}", inbound)
        return {key for name in _node_names(config["output_layers"]) for key in aliases[name]}

    def _add_layer(self, layer, key, producers):
        if isinstance(layer, keras.Model):
            return self._add_model(layer, f"{key}/", producers)
        return self._add(key, layer, producers)


def _history_names(structure):
    if isinstance(structure, dict):
        if structure.get("class_name") == "__keras_tensor__":
            return [structure["config"]["keras_history"][0]]
        return [name for value in structure.values() for name in _history_names(value)]
    if isinstance(structure, (list, tuple)):
        return [name for value in structure for name in _history_names(value)]
    return []


def _node_names(structure):
    # output_layers holds [name, node_index, tensor_index] triples, nested like
    # the model's outputs (a single triple for a single output).
    if isinstance(structure, (list, tuple)) and len(structure) == 3 and isinstance(structure[0], str):
        return [structure[0]]
    values = structure.values() if isinstance(structure, dict) else structure
    return [name for value in values for name in _node_names(value)]


def _padding(layer):
    return tuple(tuple(int(p) for p in side) for side in layer.padding)


def _unwrap(layer):
    return layer.layer if isinstance(layer, PruneLowMagnitude) else layer
