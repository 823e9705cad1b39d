"""prune_low_magnitude: wrap a layer, a list of layers or a whole model."""

import warnings

import keras
from absl import logging

from kopt.errors import ConfigError
from kopt.pruning import prunable
from kopt.pruning import schedules
from kopt.pruning.policy import PruningPolicy
from kopt.pruning.strip import PRUNE_ADVICE
from kopt.pruning.wrapper import PruneLowMagnitude
from kopt.pruning.wrapper import check_criterion
from kopt.pruning.wrapper import check_pruning_arguments
from tflite_export.cloning import clone_graph_model
from tflite_export.cloning import copy_layer
from tflite_export.layers import leaf_layers

__all__ = ["prune_low_magnitude", "prune_scope"]


def prune_scope() -> keras.saving.CustomObjectScope:
    """A ``custom_object_scope`` holding the pruning wrapper, for tfmot code that loads inside one.

    kopt registers its classes with Keras, so loading needs no scope; this exists
    so that ``with prune_scope(): keras.models.load_model(path)`` ports as is.

    Example:

    >>> import keras
    >>> with prune_scope():
    ...     keras.saving.get_registered_object("PruneLowMagnitude").__name__
    'PruneLowMagnitude'
    """
    return keras.saving.custom_object_scope({"PruneLowMagnitude": PruneLowMagnitude})


# An "already pruned" error names at most this many layers, then "and N more".
_NAMED_LAYERS = 3


def prune_low_magnitude(
    to_prune: keras.layers.Layer | list | keras.Model,
    pruning_schedule: schedules.PruningSchedule | str | dict | None = None,
    block_size: tuple[int, int] = (1, 1),
    block_pooling_type: str = "AVG",
    sparsity_m_by_n: tuple[int, int] | None = None,
    pruning_policy: PruningPolicy | None = None,
    *,
    criterion: str = "magnitude",
    layer_schedules: dict | None = None,
    **kwargs,
) -> keras.layers.Layer | list[keras.layers.Layer] | keras.Model:
    """Makes a layer or model prune its low-magnitude weights while it trains.

    Same names and meanings as ``tfmot.sparsity.keras.prune_low_magnitude``:

    * a layer: returns it wrapped in :class:`PruneLowMagnitude`;
    * a list of layers: returns the list with each layer wrapped (input layers
      pass through);
    * a Sequential or functional model, nested models included: returns a copy
      (new layers, same weights, not compiled) with every supported layer
      wrapped. Layers that hold weights but are not prunable are left as they
      are, and one warning lists them. Depthwise convolutions are left dense
      unless ``layer_schedules`` names them (as tfmot does; see
      :func:`kopt.pruning.prunable.is_dense_by_default`), and an info log
      lists them.

    Train the result with ``kopt.pruning.UpdatePruningStep()`` in the callbacks
    (or :class:`kopt.pruning.PruningStep` in a custom loop), then call
    :func:`kopt.pruning.strip_pruning` before export.

    Something already pruned is refused rather than silently kept on its old
    schedule: to prune a pruned model again with new settings, call
    :func:`kopt.pruning.strip_pruning` on it first.

    Args:
        to_prune: A layer, a list of layers, or a Sequential/functional model.
        pruning_schedule: A :class:`PruningSchedule` (or a name/config that
            ``kopt.pruning.schedules.get`` accepts); ``None`` means
            ``ConstantSparsity(0.5, begin_step=0)``.
        block_size: ``(rows, cols)`` tiles pruned together; ``(1, 1)`` prunes
            single weights.
        block_pooling_type: ``"AVG"`` or ``"MAX"``: how a tile is scored.
        sparsity_m_by_n: ``(m, n)``: ``m`` zeros in every ``n`` consecutive
            weights along the input-channel axis, e.g. ``(2, 4)``.
        pruning_policy: A :class:`PruningPolicy` choosing which layers to wrap and
            checking the model first, e.g. ``PruneForLatencyOnXNNPack()``.
        criterion: ``"magnitude"`` (default) or ``"random"``, a baseline that
            zeroes a fixed random choice of weights.
        layer_schedules: Per-layer settings for a model or a list: ``{layer name:
            schedule}`` (anything ``pruning_schedule`` accepts), or ``{layer name:
            None}`` to leave that layer unpruned. Layers not named use
            ``pruning_schedule``, except depthwise convolutions, which a
            model or list prunes only when they are named here.
            ``kopt.auto.allocate`` produces such schedules.
        **kwargs: Passed to the wrapper (e.g. ``name``); only with a single layer.

    Returns:
        The wrapped layer, list of layers, or a new model.

    Raises:
        ConfigError: If ``to_prune`` is, or holds (nested models included), a
            :class:`PruneLowMagnitude` layer; the message names the layers.
        ValueError: For an unsupported single layer (naming it, its class and the
            ``PrunableLayer`` protocol), a subclassed model, an object that is none
            of the above, bad schedule or block settings, a ``layer_schedules``
            name that is not a prunable layer of the model, or a model the policy
            refuses.

    Example:

    >>> import keras
    >>> from kopt.pruning import PolynomialDecay
    >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4), keras.layers.Dense(2)])
    >>> pruned = prune_low_magnitude(
    ...     model, pruning_schedule=PolynomialDecay(0.0, 0.8, begin_step=0, end_step=100))
    >>> [type(layer).__name__ for layer in pruned.layers]
    ['PruneLowMagnitude', 'PruneLowMagnitude']
    >>> per_layer = prune_low_magnitude(model, layer_schedules={model.layers[1].name: None})
    >>> [type(layer).__name__ for layer in per_layer.layers]
    ['PruneLowMagnitude', 'Dense']
    """
    _refuse_already_pruned(to_prune)
    params = {
        "pruning_schedule": schedules.get(pruning_schedule) or schedules.ConstantSparsity(0.5, 0),
        "block_size": block_size,
        "block_pooling_type": block_pooling_type,
        "sparsity_m_by_n": sparsity_m_by_n,
        "criterion": criterion,
    }
    if pruning_policy is not None and not isinstance(pruning_policy, PruningPolicy):
        raise ValueError(f"`pruning_policy` must be a PruningPolicy. Received: pruning_policy={pruning_policy!r}")
    # Every setting is checked once, before any layer is cloned.
    check_pruning_arguments(block_size, block_pooling_type, sparsity_m_by_n)
    check_criterion(criterion, block_size, sparsity_m_by_n)
    if layer_schedules is not None:
        layer_schedules = _check_layer_schedules(layer_schedules, to_prune)

    if isinstance(to_prune, keras.Model):
        _no_kwargs(kwargs, to_prune)
        if pruning_policy is not None:
            pruning_policy.ensure_model_supports_pruning(to_prune)
        return _prune_model(to_prune, params, pruning_policy, layer_schedules or {})
    if isinstance(to_prune, (list, tuple)):
        _no_kwargs(kwargs, to_prune)
        left_dense = []
        pruned = [
            _prune_list_item(layer, params, pruning_policy, layer_schedules or {}, left_dense) for layer in to_prune
        ]
        _log_left_dense(left_dense)
        return pruned
    if isinstance(to_prune, keras.layers.Layer):
        if pruning_policy is not None and not pruning_policy.allow_pruning(to_prune):
            raise ValueError(
                f"{type(pruning_policy).__name__} does not allow pruning layer {to_prune.name!r} "
                f"({type(to_prune).__name__})."
            )
        return PruneLowMagnitude(to_prune, **params, **kwargs)
    raise ValueError(
        "prune_low_magnitude accepts a keras layer, a list of layers, or a Sequential or functional "
        f"model. Received: to_prune of type {type(to_prune).__name__}"
    )


def _refuse_already_pruned(to_prune):
    """Raises ``ConfigError`` naming the ``PruneLowMagnitude`` layers ``to_prune`` is or holds.

    Models are searched as ``prune_low_magnitude`` walks them: Sequential and
    functional models, nested ones included. A subclassed model is left to the
    error that refuses it.
    """
    if isinstance(to_prune, PruneLowMagnitude):
        wrappers = [to_prune]
    elif isinstance(to_prune, (list, tuple)):
        wrappers = [layer for layer in to_prune if isinstance(layer, PruneLowMagnitude)]
    elif isinstance(to_prune, keras.Model):
        wrappers = list(_graph_wrappers(to_prune))
    else:
        return
    if not wrappers:
        return
    if isinstance(to_prune, keras.Model):
        fix = "call kopt.pruning.strip_pruning first to prune again with a new schedule"
    else:
        fix = "pass the wrapped layer (`wrapper.layer`) instead to prune again with a new schedule"
    names = [wrapper.layer.name for wrapper in wrappers[:_NAMED_LAYERS]]
    more = len(wrappers) - len(names)
    value = _shortened([wrapper.layer.name for wrapper in wrappers])
    schedules_shown = [repr(wrapper.pruning_schedule) for wrapper in wrappers]
    if len(set(schedules_shown)) == 1:
        listed = ", ".join(repr(name) for name in names)
        detail = f"schedule {schedules_shown[0]}"
    else:
        listed = ", ".join(f"{name!r} (schedule {shown})" for name, shown in zip(names, schedules_shown))
        detail = "each on its own schedule"
    if more:
        listed += f" and {more} more"
    subject = f"layer {listed} is" if len(wrappers) == 1 else f"layers {listed} are"
    where = f" in model {to_prune.name!r}" if isinstance(to_prune, keras.Model) else ""
    raise ConfigError("to_prune", value, f"{subject} already wrapped for pruning{where} ({detail}); {fix}")


def _graph_wrappers(model):
    """The ``PruneLowMagnitude`` layers of a Sequential/functional model, nested ones included."""
    if not isinstance(model, (keras.Sequential, keras.Function)):
        return
    for layer in model.layers:
        if isinstance(layer, PruneLowMagnitude):
            yield layer
        elif isinstance(layer, keras.Model):
            yield from _graph_wrappers(layer)


def _check_layer_schedules(layer_schedules, to_prune):
    """``{name: schedule or None}`` after checking every name is a prunable layer."""
    if not isinstance(to_prune, (keras.Model, list, tuple)):
        raise ValueError(
            "layer_schedules applies to a model or a list of layers; pass pruning_schedule for a single layer. "
            f"Received: layer_schedules with {type(to_prune).__name__} {getattr(to_prune, 'name', '')!r}"
        )
    if not isinstance(layer_schedules, dict) or not all(isinstance(name, str) for name in layer_schedules):
        raise ValueError(
            f"layer_schedules must be a dict {{layer name: schedule or None}}. Received: layer_schedules={layer_schedules!r}"
        )
    layers = {layer.name: layer for layer in leaf_layers(to_prune)}
    checked = {}
    for name, schedule in layer_schedules.items():
        layer = layers.get(name)
        if layer is None:
            raise ValueError(
                f"layer_schedules names layer {name!r}, which is not in the model; its layers are "
                f"{sorted(layers)}. Received: layer_schedules keys {sorted(layer_schedules)}"
            )
        inner = layer.layer if isinstance(layer, PruneLowMagnitude) else layer
        if schedule is not None and not prunable.is_prunable(inner):
            raise ValueError(prunable.unsupported_message(inner))
        checked[name] = None if schedule is None else schedules.get(schedule)
    return checked


def _with_schedule(params, layer_schedules, layer, left_dense):
    """The wrapper settings for ``layer``, or ``None`` if it stays unpruned.

    A layer that is dense by default and not named is added to ``left_dense``.
    """
    if layer.name not in layer_schedules:
        if prunable.is_dense_by_default(layer):
            left_dense.append(layer)
            return None
        return params
    schedule = layer_schedules[layer.name]
    return None if schedule is None else {**params, "pruning_schedule": schedule}


def _shortened(names):
    """The first ``_NAMED_LAYERS`` names, then "and N more"."""
    more = len(names) - _NAMED_LAYERS
    return ", ".join(names[:_NAMED_LAYERS]) + (f" and {more} more" if more > 0 else "")


def _log_left_dense(layers):
    if not layers:
        return
    logging.info(
        "prune_low_magnitude left %d depthwise layer(s) dense (%s): depthwise kernels are few and pruning "
        "them costs accuracy; name a layer in layer_schedules to prune it.",
        len(layers),
        _shortened([layer.name for layer in layers]),
    )


def _prune_list_item(layer, params, pruning_policy, layer_schedules, left_dense):
    if isinstance(layer, keras.layers.InputLayer):
        return layer
    if isinstance(layer, keras.Model):
        raise ValueError(
            f"Received model {layer.name!r} in a list of layers to prune; call prune_low_magnitude on the model itself."
        )
    if pruning_policy is not None and not pruning_policy.allow_pruning(layer):
        return layer
    settings = _with_schedule(params, layer_schedules, layer, left_dense)
    return layer if settings is None else PruneLowMagnitude(layer, **settings)


def _prune_model(model, params, pruning_policy, layer_schedules):
    left_unpruned = []
    left_dense = []

    def wrap(layer):
        clone = copy_layer(layer)
        if pruning_policy is not None and not pruning_policy.allow_pruning(layer):
            return clone
        if not prunable.is_prunable(layer):
            if layer.weights and not prunable.has_nothing_to_prune(layer):
                left_unpruned.append(f"{layer.name} ({type(layer).__name__})")
            return clone
        settings = _with_schedule(params, layer_schedules, layer, left_dense)
        return clone if settings is None else PruneLowMagnitude(clone, **settings)

    pruned = clone_graph_model(model, wrap, action="prune", advice=PRUNE_ADVICE)
    _log_left_dense(left_dense)
    if left_unpruned:
        warnings.warn(
            f"prune_low_magnitude left {len(left_unpruned)} layer(s) with weights unpruned because kopt.pruning "
            f"does not support them: {', '.join(left_unpruned)}. To prune one, give its class a "
            "`get_prunable_weights()` method (the kopt.pruning.PrunableLayer protocol).",
            stacklevel=3,
        )
    return pruned


def _no_kwargs(kwargs, to_prune):
    if kwargs:
        raise ValueError(
            f"Extra keyword arguments apply to a single layer only; received {sorted(kwargs)} "
            f"with {type(to_prune).__name__} {getattr(to_prune, 'name', '')!r}."
        )
