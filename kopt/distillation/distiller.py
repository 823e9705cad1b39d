"""``Distiller``: a student learns from a frozen teacher inside ``model.fit``.

The training step (TensorFlow backend, graph or eager):

1. The teacher runs in inference mode, outside the gradient tape (or its
   logits come precomputed with the batch, see :mod:`kopt.distillation.teacher_cache`).
2. The student runs in training mode under the tape, so its non-trainable state
   (BatchNormalization statistics, QAT ranges, pruning masks and steps) updates
   as in any ``fit``.
3. ``loss = alpha * hard + (1 - alpha) * T^2 * soft + feature_weight * hint``, and
   only the student's (and the feature adapters') trainable variables move.

``distiller.student`` is the trained model to save, strip or export.
"""

import copy

import keras
import tensorflow as tf

from kopt.distillation import checks
from kopt.distillation import losses as losses_lib
from kopt.distillation.feature import FeatureAdapter
from kopt.distillation.feature import feature_extractor
from kopt.distillation.feature import feature_mse
from kopt.models import classification_loss
from kopt.models import two_class_logits

__all__ = ["Distiller"]

DISTILLATION_KINDS = ("soft", "hard")
LABELS = "labels"
TEACHER_LOGITS = "teacher_logits"


class _Untracked:
    """Holds models that share the student's and teacher's layers.

    Keras tracks layers set as attributes and would save their weights twice;
    the feature extractors hold no variables of their own.
    """

    def __init__(self, **models):
        self.__dict__.update(models)


@keras.saving.register_keras_serializable(package="kopt")
class Distiller(keras.Model):
    """Trains ``student`` on labels and on ``teacher``'s softened outputs (Hinton et al., 2015).

    ``loss = alpha * student_loss + (1 - alpha) * distillation_loss + feature_weight * feature_loss``
    where ``distillation_loss`` is ``T^2 * KL(softmax(t / T) || softmax(s / T))`` of the
    teacher's and student's logits ``t`` and ``s``, averaged over the batch (``distillation="hard"``:
    ``student_loss_fn(argmax(t), s)``, no ``T``), and ``feature_loss`` the summed MSE of each
    ``feature_layers`` pair after the student's features pass through a learned :class:`FeatureAdapter`.

    Both models must output logits, be built, and have the same number of
    classes. A binary classifier may output one logit, of class 1: it takes part
    in the soft and hard losses as the two logits ``[0, z]``, whose softmax is
    ``[1 - sigmoid(z), sigmoid(z)]``, so a one-logit teacher can teach a one- or
    two-logit student. The teacher is never trained: it is always called with
    ``training=False``, and its weights count among the Distiller's
    non-trainable weights. Its own ``trainable`` flag is left as it was, so the
    same model can be fine-tuned or pruned afterwards. ``fit`` reports ``loss``,
    ``student_loss``, ``distillation_loss`` (and ``feature_loss``) plus the
    compiled metrics of the student's predictions; ``evaluate`` and ``predict``
    run the student alone (``loss`` is then the student loss).

    Targets may be plain labels, or ``{"labels": y, "teacher_logits": t}`` with the
    teacher's logits computed once beforehand (see :func:`teacher_logits`), in
    which case the teacher does not run during training.

    Args:
        student: The ``keras.Model`` to train.
        teacher: A trained ``keras.Model`` with the student's inputs and classes.
        alpha: Weight of the hard-label loss in ``[0, 1]``; the soft loss gets
            ``1 - alpha``. Hinton et al. found a small weight on the hard loss best.
        temperature: ``T > 0`` that softens both distributions.
        distillation: ``"soft"`` (default) or ``"hard"`` (see above).
        student_loss_fn: Hard-label loss (a Keras loss or its name). Default:
            sparse categorical cross-entropy from logits, or binary
            cross-entropy for a one-logit student.
        distillation_loss_fn: Soft loss between ``softmax(t / T)`` (as ``y_true``)
            and ``softmax(s / T)``, multiplied by ``T^2``. Default (``None``): the
            KL divergence, computed from log-softmax for stability.
        feature_layers: Optional ``[(teacher_layer_name, student_layer_name), ...]``
            to match (functional or Sequential models only).
        feature_weight: Weight of the feature loss, ``>= 0``.
        allow_larger_student: Allow a student with more parameters than the
            teacher; by default that raises, as it usually means they were swapped.
        name: The model name.
        **kwargs: Other ``keras.Model`` arguments.

    Raises:
        ValueError: For unbuilt, mismatched or swapped models, outputs that are
            probabilities, or bad ``alpha``, ``temperature``, ``feature_layers``
            or ``feature_weight``.

    Example:

    >>> import keras, numpy as np
    >>> def classifier(width):
    ...     inputs = keras.Input((4,))
    ...     hidden = keras.layers.Dense(width, activation="relu")(inputs)
    ...     return keras.Model(inputs, keras.layers.Dense(3)(hidden))
    >>> distiller = Distiller(classifier(4), classifier(32), alpha=0.1, temperature=4.0)
    >>> distiller.compile("adam", metrics=["accuracy"])
    >>> history = distiller.fit(np.ones((8, 4)), np.zeros(8), verbose=0)
    >>> sorted(history.history)
    ['accuracy', 'distillation_loss', 'loss', 'student_loss']
    """

    def __init__(
        self,
        student: keras.Model,
        teacher: keras.Model,
        *,
        alpha: float = 0.1,
        temperature: float = 4.0,
        distillation: str = "soft",
        student_loss_fn: object = None,
        distillation_loss_fn: object = None,
        feature_layers: list[tuple[str, str]] | None = None,
        feature_weight: float = 1.0,
        allow_larger_student: bool = False,
        name: str = "distiller",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        checks.check_models(student, teacher, allow_larger_student)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
            raise ValueError(f"`alpha` must be a number in [0, 1]. Received: alpha={alpha!r}")
        if (
            isinstance(feature_weight, bool)
            or not isinstance(feature_weight, (int, float))
            or not 0 <= feature_weight < float("inf")
        ):
            raise ValueError(
                f"`feature_weight` must be a finite number >= 0. Received: feature_weight={feature_weight!r}"
            )
        self.alpha = float(alpha)
        self.temperature = losses_lib.check_temperature(temperature)
        if distillation not in DISTILLATION_KINDS or (distillation == "hard" and distillation_loss_fn is not None):
            raise ValueError(
                "`distillation` must be 'soft', or 'hard' without `distillation_loss_fn`. "
                f"Received: distillation={distillation!r}, distillation_loss_fn={distillation_loss_fn!r}"
            )
        self.distillation = distillation
        self.feature_weight = float(feature_weight)
        self.allow_larger_student = bool(allow_larger_student)
        self.student_loss_fn = keras.losses.get(
            student_loss_fn if student_loss_fn is not None else classification_loss(student)
        )
        self.distillation_loss_fn = None if distillation_loss_fn is None else keras.losses.get(distillation_loss_fn)
        self.feature_layers = checks.check_feature_layers(feature_layers)

        self.student = student
        self.teacher = teacher
        self.adapters = []
        self._extractors = None
        if self.feature_layers:
            teacher_names, student_names = zip(*self.feature_layers)
            teacher_features = feature_extractor(teacher, teacher_names, who="teacher")
            student_features = feature_extractor(student, student_names, who="student")
            self._extractors = _Untracked(teacher=teacher_features, student=student_features)
            for index, (teacher_out, student_out) in enumerate(
                zip(teacher_features.outputs[1:], student_features.outputs[1:])
            ):
                target, source = tuple(teacher_out.shape[1:]), tuple(student_out.shape)
                adapter = FeatureAdapter(target, identity=target == source[1:], name=f"adapter_{index}")
                adapter.build(source)
                self.adapters.append(adapter)

        self.total_loss_tracker = keras.metrics.Mean(name="loss")
        self.student_loss_tracker = keras.metrics.Mean(name="student_loss")
        self.distillation_loss_tracker = keras.metrics.Mean(name="distillation_loss")
        self.feature_loss_tracker = keras.metrics.Mean(name="feature_loss") if self.feature_layers else None
        self.built = True

    def call(self, inputs: object, training: bool | None = None) -> tf.Tensor:
        return self.student(inputs, training=training)

    def compile(
        self,
        optimizer: keras.optimizers.Optimizer | str = "adam",
        loss: None = None,
        metrics: list | dict | None = None,
        **kwargs,
    ) -> None:
        """Configures training; the losses are the Distiller's own.

        Args:
            optimizer: A Keras optimizer (or its name) for the student.
            loss: Must be ``None``: pass ``student_loss_fn`` to the constructor.
            metrics: Metrics of the student's predictions against the labels.
            **kwargs: Other ``keras.Model.compile`` arguments.

        Raises:
            ValueError: If ``loss`` is given.
        """
        if loss is not None:
            raise ValueError(
                "Distiller computes its own loss; pass `student_loss_fn` (and `distillation_loss_fn`) "
                f"to Distiller(...) instead. Received: loss={loss!r}"
            )
        super().compile(optimizer=optimizer, metrics=metrics, **kwargs)

    def compile_from_config(self, config: dict[str, object]) -> None:
        """Recompiles a loaded Distiller from its saved ``compile()`` arguments."""
        config = keras.saving.deserialize_keras_object(config)
        config.pop("loss", None)
        config.pop("loss_weights", None)
        self.compile(**config)
        # Built now, so the saved optimizer state has variables to load into.
        self.optimizer.build(self.trainable_variables)

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        own = [self.total_loss_tracker, self.student_loss_tracker, self.distillation_loss_tracker]
        if self.feature_loss_tracker is not None:
            own.append(self.feature_loss_tracker)
        names = {metric.name for metric in own}
        # Keras' compile-time `loss` tracker would shadow ours under the same name.
        return own + [metric for metric in super().metrics if metric.name not in names]

    def train_step(self, data: object) -> dict[str, object]:
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        labels, teacher_logits = _split_targets(y)
        teacher_features = []
        if self._extractors is not None:
            if teacher_logits is not None:
                raise ValueError(
                    "Cached teacher logits cannot be combined with `feature_layers`: feature distillation "
                    f"runs the teacher every step anyway. Received: y keys {sorted(y)}"
                )
            teacher_logits, *teacher_features = self._extractors.teacher(x, training=False)
        elif teacher_logits is None:
            teacher_logits = self.teacher(x, training=False)
        teacher_logits = keras.ops.stop_gradient(teacher_logits)
        teacher_features = [keras.ops.stop_gradient(f) for f in teacher_features]
        batch_size = keras.ops.shape(keras.tree.flatten(x)[0])[0]
        variables = self._student_variables()

        with tf.GradientTape() as tape:
            if self._extractors is not None:
                student_logits, *student_features = self._extractors.student(x, training=True)
            else:
                student_logits, student_features = self.student(x, training=True), []
            parts = self._loss_parts(labels, teacher_logits, student_logits, sample_weight)
            if student_features:
                parts["feature_loss"] = keras.ops.sum(
                    keras.ops.stack(
                        [
                            feature_mse(teacher, adapter(student))
                            for teacher, student, adapter in zip(teacher_features, student_features, self.adapters)
                        ]
                    )
                )
                parts["loss"] = parts["loss"] + self.feature_weight * parts["feature_loss"]
            # Each replica's gradient is summed across replicas: scale to the global mean.
            scaled = parts["loss"] / tf.distribute.get_strategy().num_replicas_in_sync
            if self.optimizer is not None:
                scaled = self.optimizer.scale_loss(scaled)
        gradients = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(gradients, variables))
        self._update_trackers(parts, batch_size)
        return self.compute_metrics(x, labels, student_logits, sample_weight=sample_weight)

    def test_step(self, data: object) -> dict[str, object]:
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        labels, _ = _split_targets(y)
        student_logits = self.student(x, training=False)
        student_loss = _reduce(self.student_loss_fn, labels, student_logits, sample_weight)
        batch_size = keras.ops.shape(keras.tree.flatten(x)[0])[0]
        self._update_trackers({"loss": student_loss, "student_loss": student_loss}, batch_size)
        results = self.compute_metrics(x, labels, student_logits, sample_weight=sample_weight)
        return {key: value for key, value in results.items() if key not in ("distillation_loss", "feature_loss")}

    def _loss_parts(self, labels, teacher_logits, student_logits, sample_weight):
        student_loss = _reduce(self.student_loss_fn, labels, student_logits, sample_weight)
        # One score of class 1 (a binary classifier) takes part as the two logits [0, z]:
        # a softmax over its single column would be 1 whatever the model predicts.
        teacher_logits = two_class_logits(teacher_logits)
        if self.distillation == "hard":
            labels_from_teacher = keras.ops.argmax(teacher_logits, axis=-1)
            distillation_loss = _reduce(self.student_loss_fn, labels_from_teacher, student_logits, sample_weight)
        elif self.distillation_loss_fn is None:
            per_example = losses_lib.softened_kl_divergence(
                teacher_logits, two_class_logits(student_logits), self.temperature
            )
            distillation_loss = _weighted_mean(per_example, sample_weight)
        else:
            distillation_loss = (self.temperature**2) * _reduce(
                self.distillation_loss_fn,
                losses_lib.soft_targets(teacher_logits, self.temperature),
                losses_lib.soft_targets(two_class_logits(student_logits), self.temperature),
                sample_weight,
            )
        total = self.alpha * student_loss + (1.0 - self.alpha) * distillation_loss
        return {"loss": total, "student_loss": student_loss, "distillation_loss": distillation_loss}

    def _update_trackers(self, parts, batch_size):
        trackers = {
            "loss": self.total_loss_tracker,
            "student_loss": self.student_loss_tracker,
            "distillation_loss": self.distillation_loss_tracker,
            "feature_loss": self.feature_loss_tracker,
        }
        for key, value in parts.items():
            trackers[key].update_state(value, sample_weight=batch_size)

    # Keras reads trainability from the variables; these four views instead count
    # only the student and the adapters as trained, so the teacher's own flag can
    # stay as the user left it.
    @property
    def trainable_weights(self) -> list[keras.Variable]:
        """The student's and the feature adapters' trainable weights: the teacher is not trained."""
        return self._student_variables() if self.trainable else []

    @property
    def trainable_variables(self) -> list[keras.Variable]:
        return self.trainable_weights

    @property
    def non_trainable_weights(self) -> list[keras.Variable]:
        """Every other weight: the teacher's and the student's non-trainable ones."""
        return _without(self.weights, self.trainable_weights)

    @property
    def non_trainable_variables(self) -> list[keras.Variable]:
        return _without(self.variables, self.trainable_weights)

    def _student_variables(self):
        adapter_variables = [v for adapter in self.adapters for v in adapter.trainable_variables]
        return list(self.student.trainable_variables) + adapter_variables

    def get_config(self) -> dict[str, object]:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "student": keras.saving.serialize_keras_object(self.student),
            "teacher": keras.saving.serialize_keras_object(self.teacher),
            "alpha": self.alpha,
            "temperature": self.temperature,
            "distillation": self.distillation,
            "student_loss_fn": keras.losses.serialize(self.student_loss_fn),
            "distillation_loss_fn": (
                None if self.distillation_loss_fn is None else keras.losses.serialize(self.distillation_loss_fn)
            ),
            "feature_layers": [list(pair) for pair in self.feature_layers],
            "feature_weight": self.feature_weight,
            "allow_larger_student": self.allow_larger_student,
        }

    @classmethod
    def from_config(cls, config: dict[str, object]) -> "Distiller":
        # The deserializers consume nested dicts; keep the caller's config intact.
        config = copy.deepcopy(config)
        trainable = config.pop("trainable", True)
        for key in ("student", "teacher"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        for key in ("student_loss_fn", "distillation_loss_fn"):
            if config.get(key) is not None:
                config[key] = keras.losses.deserialize(config[key])
        distiller = cls(**config)
        distiller.trainable = trainable
        return distiller


def _split_targets(y):
    if isinstance(y, dict):
        if set(y) != {LABELS, TEACHER_LOGITS}:
            raise ValueError(
                f"Distiller targets given as a dict need exactly the keys {LABELS!r} and {TEACHER_LOGITS!r}. "
                f"Received: y keys {sorted(y)}"
            )
        return y[LABELS], y[TEACHER_LOGITS]
    return y, None


def _reduce(loss_fn, y_true, y_pred, sample_weight):
    # Per-example values, averaged here: a Keras Loss object's __call__ would also
    # divide by the number of replicas, which train_step does once for the total.
    per_example = loss_fn.call(y_true, y_pred) if isinstance(loss_fn, keras.losses.Loss) else loss_fn(y_true, y_pred)
    return _weighted_mean(per_example, sample_weight)


def _weighted_mean(per_example, sample_weight):
    # Keras' "sum_over_batch_size": weighted sum over the number of examples.
    if sample_weight is not None:
        per_example = per_example * keras.ops.cast(keras.ops.reshape(sample_weight, (-1,)), per_example.dtype)
    return keras.ops.mean(per_example)


def _without(variables, excluded):
    excluded = {id(variable) for variable in excluded}
    return [variable for variable in variables if id(variable) not in excluded]
