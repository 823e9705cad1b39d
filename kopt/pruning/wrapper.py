"""The PruneLowMagnitude layer wrapper: wires masks, thresholds and the step.

Per prunable weight the wrapper holds a 0/1 ``mask`` and a scalar ``threshold``,
plus one int64 ``pruning_step``; all are non-trainable layer variables, so they
are saved in ``.keras`` files and a loaded model resumes its schedule.

Training call (``training=True``):

1. If the schedule says so for ``pruning_step``, recompute the masks from the
   effective weights ``w * mask`` (:mod:`kopt.pruning.masks`), inside one
   ``keras.ops.cond``: the sort behind a mask runs only on pruning steps.
2. Add 1 to ``pruning_step``. Counting in the graph costs nothing per step and
   stays right with ``steps_per_execution > 1``; as in tfmot, it counts training
   calls of the wrapper (a layer called twice per batch counts twice).
3. Run the wrapped layer with each prunable weight replaced by ``w * mask`` (a
   ``keras.StatelessScope`` maps the variables to the masked values), so the
   forward pass only costs one multiply per weight and the gradient reaching
   ``w`` is ``mask * dL/d(w * mask)``: pruned weights get no update.

The kernel variable itself is overwritten with ``w * mask`` outside the compiled
step (``UpdatePruningStep`` at train begin, epoch end and train end,
``PruningStep.finish``, and ``strip_pruning``), never inside it: a replica may not
write a mirrored variable in a conditional, and the forward pass never reads the
stale pruned values anyway.

Under ``tf.distribute`` the masks, thresholds and step are on-read synchronized
variables: each replica computes the same mask from the same mirrored weights,
with no cross-replica traffic, and saving reads the first replica's copy.
"""

import numbers
import zlib
from typing import Any

import keras
import numpy as np
from keras import ops

from kopt.pruning import masks as masks_lib
from kopt.pruning import prunable
from kopt.pruning import schedules
from kopt.utils.substitution import SubstitutingWrapper

MISSING_CALLBACK_MESSAGE = (
    "Layer {name!r} is a PruneLowMagnitude wrapper being trained before its pruning schedule was "
    "started. Pass kopt.pruning.UpdatePruningStep() in the callbacks of model.fit(), or, in a "
    "custom training loop, create kopt.pruning.PruningStep(model) before the first training step."
)


@keras.saving.register_keras_serializable(package="kopt")
class PruneLowMagnitude(SubstitutingWrapper):
    """Prunes the low-magnitude weights of the wrapped layer during training.

    Prefer :func:`kopt.pruning.prune_low_magnitude`, which wraps whole models.

    Args:
        layer: The layer to prune: a built-in supported layer or one following the
            :class:`kopt.pruning.PrunableLayer` protocol.
        pruning_schedule: A :class:`kopt.pruning.PruningSchedule` (or anything
            ``kopt.pruning.schedules.get`` accepts); ``None`` means
            ``ConstantSparsity(0.5, begin_step=0)``.
        block_size: ``(rows, cols)`` tiles pruned together; ``(1, 1)`` prunes
            single weights. Needs matrix-shaped weights.
        block_pooling_type: ``"AVG"`` or ``"MAX"``: how a tile is scored.
        sparsity_m_by_n: ``(m, n)``: ``m`` zeros in every ``n`` consecutive weights
            along the input-channel axis (tfmot's convention; ``(2, 4)`` is 2:4).
            The schedule then only decides *when* masks update.
        criterion: Which weights go: ``"magnitude"`` (the smallest) or
            ``"random"`` (a fixed random choice; a baseline to measure a
            criterion against, unstructured masks only).
        **kwargs: Base layer arguments (``name``, ``dtype``...).

    Raises:
        ValueError: For an unsupported or already wrapped layer, a model, or bad
            block / M:N settings.

    Example:

    >>> import keras, numpy as np
    >>> wrapped = PruneLowMagnitude(keras.layers.Dense(4))
    >>> wrapped(np.ones((2, 3), "float32")).shape
    TensorShape([2, 4])
    """

    def __init__(
        self,
        layer: keras.layers.Layer,
        pruning_schedule: schedules.PruningSchedule | str | dict | None = None,
        block_size: tuple[int, int] = (1, 1),
        block_pooling_type: str = "AVG",
        sparsity_m_by_n: tuple[int, int] | None = None,
        criterion: str = "magnitude",
        **kwargs,
    ):
        if isinstance(layer, keras.Model):
            raise ValueError(
                f"PruneLowMagnitude wraps layers, not models. Use kopt.pruning.prune_low_magnitude(model) "
                f"instead. Received: layer={layer.name!r} ({type(layer).__name__})"
            )
        if isinstance(layer, PruneLowMagnitude):
            raise ValueError(f"Layer {layer.name!r} is already wrapped by PruneLowMagnitude.")
        if isinstance(layer, keras.layers.Layer) and not prunable.is_prunable(layer):
            raise ValueError(prunable.unsupported_message(layer))
        self.block_size, self.block_pooling_type, self.sparsity_m_by_n = check_pruning_arguments(
            block_size, block_pooling_type, sparsity_m_by_n
        )
        self.criterion = check_criterion(criterion, self.block_size, self.sparsity_m_by_n)
        self.pruning_schedule = schedules.get(pruning_schedule) or schedules.ConstantSparsity(0.5, 0)
        if isinstance(layer, keras.layers.Layer):
            kwargs.setdefault("name", f"prune_low_magnitude_{layer.name}")
            kwargs.setdefault("dtype", layer.dtype_policy)
        # The masked weights are computed in the variables' dtype; the wrapped
        # layer casts them itself under a mixed-precision policy.
        kwargs["autocast"] = False
        super().__init__(layer, **kwargs)
        self._schedule_started = False

    def build(self, input_shape: Any = None) -> None:
        if not self.layer.built:
            self.layer.build(input_shape)
        names = []
        for weight in self.prunable_weights:
            try:
                masks_lib.check_weight_shape(
                    tuple(weight.shape),
                    block_size=self.block_size,
                    block_pooling_type=self.block_pooling_type,
                    sparsity_m_by_n=self.sparsity_m_by_n,
                )
            except ValueError as err:
                raise ValueError(
                    f"Cannot prune weight {weight.path!r} of layer {self.layer.name!r} "
                    f"({type(self.layer).__name__}) this way: {err}"
                ) from err
            names.append(self._short_name(weight))
        self.masks = [
            self._state(f"{name}_mask", weight.shape, weight.dtype, 1)
            for name, weight in zip(names, self.prunable_weights)
        ]
        # A fixed draw per weight for the random criterion, stable across saves.
        self._seeds = [zlib.crc32(f"{self.layer.name}/{name}".encode()) & 0x7FFFFFFF for name in names]
        self.thresholds = [
            self._state(f"{name}_threshold", (), weight.dtype, 0) for name, weight in zip(names, self.prunable_weights)
        ]
        # -1 until the schedule is started, as in tfmot.
        self.pruning_step = self._state("pruning_step", (), "int64", 0 if self._schedule_started else -1)

    def _state(self, name, shape, dtype, initial_value):
        # On-read synchronization lets every replica write its own copy inside the
        # compiled step; add_weight cannot ask for it.
        return keras.Variable(
            initializer=keras.initializers.Constant(initial_value),
            shape=shape,
            dtype=dtype,
            trainable=False,
            aggregation="only_first_replica",
            synchronization="on_read",
            name=name,
        )

    def _short_name(self, weight):
        prefix = f"{self.layer.path}/" if self.layer.path else ""
        path = weight.path[len(prefix) :] if weight.path.startswith(prefix) else weight.name
        return path.replace("/", "_")

    @property
    def prunable_weights(self) -> list[keras.Variable]:
        """The wrapped layer's weights that are masked."""
        # Looked up, not stored: a stored list would make Keras track the
        # wrapped layer's variables a second time, as the wrapper's own.
        return prunable.get_prunable_weights(self.layer)

    @property
    def pruning_vars(self) -> list[tuple[keras.Variable, keras.Variable, keras.Variable]]:
        """``(weight, mask, threshold)`` triples, as tfmot's wrapper exposes them."""
        return list(zip(self.prunable_weights, self.masks, self.thresholds))

    def call(self, inputs: Any, *args, training: bool | None = None, **kwargs) -> Any:
        if training:
            if not self._schedule_started:
                raise RuntimeError(MISSING_CALLBACK_MESSAGE.format(name=self.name))
            self._update_masks_if_due()
            self.pruning_step.assign_add(1)
        masked = {id(w): ops.multiply(w.value, m.value) for w, m in zip(self.prunable_weights, self.masks)}
        return self.call_with_values(masked, inputs, *args, training=training, **kwargs)

    def _update_masks_if_due(self):
        should_prune, sparsity = self.pruning_schedule(self.pruning_step.value)

        def update():
            for (weight, mask, threshold), seed in zip(self.pruning_vars, self._seeds):
                new_mask, new_threshold = masks_lib.compute_mask(
                    ops.multiply(weight.value, mask.value),
                    sparsity,
                    block_size=self.block_size,
                    block_pooling_type=self.block_pooling_type,
                    sparsity_m_by_n=self.sparsity_m_by_n,
                    criterion=self.criterion,
                    seed=seed,
                )
                mask.assign(new_mask)
                threshold.assign(new_threshold)
            return ops.convert_to_tensor(True)

        ops.cond(should_prune, update, lambda: ops.convert_to_tensor(False))

    def start_schedule(self) -> None:
        """Readies the wrapper for training; ``UpdatePruningStep`` calls it.

        Sets ``pruning_step`` to 0 if the wrapper was never trained (a loaded model
        keeps its step and resumes its schedule) and bakes the masks into the
        weights.
        """
        if not self.built:
            # build() starts the step at 0 instead of -1.
            self._schedule_started = True
            return
        if int(keras.ops.convert_to_numpy(self.pruning_step.value)) < 0:
            self.pruning_step.assign(0)
        self.apply_masks()
        self._schedule_started = True

    def apply_masks(self) -> None:
        """Overwrites each prunable weight with ``weight * mask`` (eagerly)."""
        for weight, mask in zip(self.prunable_weights, self.masks):
            weight.assign(ops.multiply(weight.value, ops.cast(mask.value, weight.dtype)))

    def masked_weights(self) -> list[np.ndarray]:
        """Returns the wrapped layer's weights as NumPy arrays, masks applied."""
        masked = {id(w): m for w, m in zip(self.prunable_weights, self.masks)}
        values = []
        for variable in self.layer.weights:
            value = keras.ops.convert_to_numpy(variable.value)
            if id(variable) in masked:
                value = value * keras.ops.convert_to_numpy(masked[id(variable)].value)
            values.append(value)
        return values

    def get_config(self) -> dict[str, Any]:
        config = {
            "pruning_schedule": keras.saving.serialize_keras_object(self.pruning_schedule),
            "block_size": list(self.block_size),
            "block_pooling_type": self.block_pooling_type,
            "sparsity_m_by_n": None if self.sparsity_m_by_n is None else list(self.sparsity_m_by_n),
            "criterion": self.criterion,
        }
        return {**super().get_config(), **config}

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: dict[str, Any] | None = None) -> "PruneLowMagnitude":
        config = dict(config)
        layer = keras.saving.deserialize_keras_object(config.pop("layer"), custom_objects=custom_objects)
        schedule = keras.saving.deserialize_keras_object(config.pop("pruning_schedule"), custom_objects=custom_objects)
        return cls(layer, pruning_schedule=schedule, **config)


def check_pruning_arguments(block_size, block_pooling_type, sparsity_m_by_n):
    """Validates the mask settings shared by the wrapper and prune_low_magnitude.

    Returns:
        ``(block_size, block_pooling_type, sparsity_m_by_n)`` with pairs as tuples.

    Raises:
        ValueError: Naming the argument and the value received.
    """
    block_size = _pair_of_ints("block_size", block_size, minimum=1)
    if sparsity_m_by_n is not None:
        sparsity_m_by_n = _pair_of_ints("sparsity_m_by_n", sparsity_m_by_n)
        if not 0 < sparsity_m_by_n[0] < sparsity_m_by_n[1]:
            raise ValueError(
                "`sparsity_m_by_n` must be (m, n) with 0 < m < n: m zeros in every n weights. "
                f"Received: sparsity_m_by_n={sparsity_m_by_n!r}"
            )
        if block_size != (1, 1):
            raise ValueError(
                "`block_size` must be (1, 1) when `sparsity_m_by_n` is set. "
                f"Received: block_size={block_size}, sparsity_m_by_n={sparsity_m_by_n}"
            )
    if block_pooling_type not in masks_lib.BLOCK_POOLING_TYPES:
        raise ValueError(
            f"`block_pooling_type` must be one of {masks_lib.BLOCK_POOLING_TYPES}. "
            f"Received: block_pooling_type={block_pooling_type!r}"
        )
    return block_size, block_pooling_type, sparsity_m_by_n


def check_criterion(criterion, block_size=(1, 1), sparsity_m_by_n=None):
    """Validates a pruning criterion against the mask settings; returns it.

    Raises:
        ValueError: For an unknown criterion, or ``"random"`` with block or M:N masks.
    """
    if criterion not in masks_lib.CRITERIA:
        raise ValueError(f"`criterion` must be one of {masks_lib.CRITERIA}. Received: criterion={criterion!r}")
    if criterion == "random" and (tuple(block_size) != (1, 1) or sparsity_m_by_n is not None):
        raise ValueError(
            "criterion='random' chooses single weights; it takes neither block_size nor sparsity_m_by_n. "
            f"Received: criterion={criterion!r}, block_size={tuple(block_size)}, sparsity_m_by_n={sparsity_m_by_n}"
        )
    return criterion


def _pair_of_ints(name, value, minimum=0):
    valid = (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= minimum for v in value)
    )
    if not valid:
        raise ValueError(f"`{name}` must be a pair of integers >= {minimum}. Received: {name}={value!r}")
    return (int(value[0]), int(value[1]))
