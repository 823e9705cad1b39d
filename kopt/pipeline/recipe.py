"""The recipe: one validated, plain-data description of a whole kopt-optimize run.

Flags become a :class:`Recipe`; the driver only ever reads the recipe, so anything
the binary does is also a Python call away::

    from kopt.pipeline import Recipe, run
    report = run(Recipe(dataset="digits", epochs=5, export_dir="/tmp/out"))
"""

import dataclasses

from kopt.data.audio import MAX_SAMPLES
from kopt.data.checks import MAX_CLASSES
from kopt.data.folders import image_size_of
from kopt.distribute.strategies import STRATEGIES
from kopt.errors import ConfigError
from kopt.pipeline.init_from import check_init_from
from kopt.pipeline.search_spec import check_search
from kopt.pipeline.settings import require_fraction
from kopt.pipeline.settings import require_positive_number
from kopt.pipeline.spec import TechniqueSpec
from kopt.training.batch_norm import DEFAULT_BATCHES
from kopt.training.config import TrainingConfig
from kopt.training.config import require_int
from kopt.training.precision import PRECISIONS

# The validation split used when something needs one and the recipe sets none.
DEFAULT_VALIDATION_SPLIT = 0.1


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Everything that defines a run: data, model, float training, techniques, outputs.

    Attributes:
        dataset: Dataset name for :func:`kopt.data.load_dataset`.
        data_dir: TFDS data directory, or ``None`` for TFDS' default.
        download: Whether TFDS may download missing data.
        num_classes: The dataset's class count when its labels alone do not show
            it; ``None`` infers it (see :func:`kopt.data.load_dataset`).
        image_size: ``[height, width]`` every image is resized to (bilinear), as
            a folder of photos of many sizes needs; ``None`` keeps the data's size.
        audio_samples: The length every WAV clip of a ``dir:`` folder is padded
            or cut to; ``None`` pads to the longest clip.
        model: A built-in model name or a path to a ``.keras`` file.
        custom_layers: Module names or ``.py`` files imported before any model
            loads: the ones that register the model's own layers
            (``@keras.saving.register_keras_serializable``); ``None`` for none.
        init_from: A ``.keras`` file whose weights the model starts from
            (:mod:`kopt.pipeline.init_from`: those that fit, matched by layer
            name), or ``None`` to start from the model's own initialization.
        epochs: Float (baseline) training epochs; 0 uses the model as given (a
            trained ``.keras`` file), its weights and BatchNormalization
            statistics untouched, before the techniques.
        batch_size: Training and evaluation batch size, at least 1.
        learning_rate: Peak learning rate of float training, positive.
        optimizer: Optimizer of float training and, unless a stage names its
            own, of fine-tuning: one of :data:`kopt.training.OPTIMIZERS`.
        momentum: Momentum of ``momentum``/``nesterov``/``rmsprop``; ``None``
            takes the optimizer's default.
        weight_decay: Decoupled weight decay; ``None`` keeps Keras' default.
        lr_schedule: One of :data:`kopt.training.LR_SCHEDULES`, for float
            training and (unless a stage names its own) fine-tuning.
        warmup_epochs: Linear warm-up epochs of float training (and of the
            distilled student); stages warm up only when their params say so.
        early_stopping_patience: Epochs without a better validation loss before
            training stops (float training and every stage); ``None``: never.
        batch_norm_batches: Training batches over which BatchNormalization's
            moving statistics are re-estimated after float training and after each
            stage's training (:func:`kopt.training.reestimate_batch_norm`); 0: never.
        mixed_precision: ``"none"``, ``"mixed_float16"`` or ``"mixed_bfloat16"``:
            the Keras dtype policy of training. QAT trains and every export
            converts in float32 regardless.
        deterministic: Turn on TensorFlow's op determinism (for the rest of the
            process), so the same seed repeats the run bit for bit.
        validation_split: Share of the training data held out for validation, in
            [0, 1) (the plateau schedule, early stopping and the search read it; the test
            split is only ever used for the report). ``None``: 0.1 when one of
            them needs it, else none; the report records the value used.
        search: The hyperparameter search, as :mod:`kopt.pipeline.search_spec`
            describes, or ``None`` for a single run.
        seed: Seed for weights initialization, shuffling and dropout.
        export_dir: Directory for ``.keras`` and ``.tflite`` files. Created if
            missing; files already in it are kept.
        report: Path of the JSON report (a PNG is written beside it), or ``None``.
        techniques: Optimization stages applied in order after float training.
        strategy: The ``tf.distribute`` strategy to train under, one of
            :data:`kopt.distribute.STRATEGIES`; ``batch_size`` is the global batch.
        num_gpus: With ``strategy="mirrored"``: how many local GPUs (default all).
        tpu: With ``strategy="tpu"``: the TPU's name or ``grpc://`` address.
    """

    dataset: str = "digits"
    data_dir: str | None = None
    download: bool = False
    num_classes: int | None = None
    image_size: list | None = None
    audio_samples: int | None = None
    model: str = "small_cnn"
    custom_layers: list | None = None
    init_from: str | None = None
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    momentum: float | None = None
    weight_decay: float | None = None
    lr_schedule: str = "constant"
    warmup_epochs: int = 0
    early_stopping_patience: int | None = None
    batch_norm_batches: int = DEFAULT_BATCHES
    mixed_precision: str = "none"
    deterministic: bool = True
    validation_split: float | None = None
    search: dict | None = None
    seed: int = 0
    export_dir: str = "kopt_export"
    report: str | None = None
    techniques: tuple = ()
    strategy: str = "default"
    num_gpus: int | None = None
    tpu: str | None = None

    def validate(self):
        """Raises :class:`kopt.ConfigError` naming the first bad setting.

        Checks types and ranges only; whether a dataset or model file exists is
        checked when it is loaded, still before any training.
        """
        _require_text("dataset", self.dataset)
        _require_text("model", self.model)
        if self.custom_layers is not None:
            if not isinstance(self.custom_layers, list | tuple) or not self.custom_layers:
                raise ConfigError("custom_layers", self.custom_layers, "must be a list of module names or .py files")
            for entry in self.custom_layers:
                _require_text("custom_layers", entry)
        check_init_from(self.init_from)
        _require_text("export_dir", self.export_dir)
        require_int("epochs", self.epochs, minimum=0)
        require_int("batch_size", self.batch_size, minimum=1)
        require_int("seed", self.seed, minimum=0)
        require_positive_number("learning_rate", self.learning_rate)
        if self.epochs == 0:
            self._check_untrained()
        # With no float training its settings still get their checks (stages inherit some of them).
        dataclasses.replace(self.training_config(), epochs=max(self.epochs, 1)).validate()
        if self.mixed_precision not in PRECISIONS:
            raise ConfigError("mixed_precision", self.mixed_precision, f"must be one of {', '.join(PRECISIONS)}")
        for key in ("download", "deterministic"):
            if not isinstance(getattr(self, key), bool):
                raise ConfigError(key, getattr(self, key), "must be true or false")
        if self.validation_split is not None and self.validation_split != 0:
            require_fraction("validation_split", self.validation_split, example=0.1)
        if self.validation_split == 0 and self.needs_validation():
            raise ConfigError(
                "validation_split",
                self.validation_split,
                "the plateau schedule, early stopping and the search need a validation split, e.g. 0.1",
            )
        if self.search is not None:
            check_search(self.search, self)
        if self.report is not None:
            _require_text("report", self.report)
            if not self.report.endswith(".json"):
                raise ConfigError("report", self.report, "must be a path ending in .json")
        if self.data_dir is not None:
            _require_text("data_dir", self.data_dir)
        if self.strategy not in STRATEGIES:
            raise ConfigError("strategy", self.strategy, f"must be one of {', '.join(STRATEGIES)}")
        if self.num_classes is not None:
            require_int("num_classes", self.num_classes, minimum=2, maximum=MAX_CLASSES)
        if self.image_size is not None:
            image_size_of("image_size", self.image_size)
        if self.audio_samples is not None:
            require_int("audio_samples", self.audio_samples, minimum=1, maximum=MAX_SAMPLES)
        if self.num_gpus is not None:
            require_int("num_gpus", self.num_gpus, minimum=1)
        if self.tpu is not None:
            _require_text("tpu", self.tpu)
        for spec in self.techniques:
            if not isinstance(spec, TechniqueSpec):
                raise ConfigError("techniques", spec, "each technique must be a TechniqueSpec")
        return self

    def _check_untrained(self):
        """``epochs=0`` uses the model as given: settings of a float training that does not happen are refused."""
        if self.warmup_epochs:
            raise ConfigError(
                "warmup_epochs", self.warmup_epochs, "with epochs=0 the model is used as given, with no float training"
            )
        if self.search is not None:
            raise ConfigError("epochs", self.epochs, "the search tunes float training; give epochs of at least 1")

    def training_config(self):
        """The :class:`kopt.training.TrainingConfig` of float training.

        A recipe carries every ``TrainingConfig`` field under the same name.
        """
        names = [field.name for field in dataclasses.fields(TrainingConfig)]
        return TrainingConfig(**{name: getattr(self, name) for name in names})

    def needs_validation(self):
        """Whether training or the search reads a validation split."""
        if self.training_config().needs_validation or self.search is not None:
            return True
        if any(spec.name == "auto" for spec in self.techniques):
            return True  # auto chooses on validation accuracy, never on the test split.
        return any(
            spec.params.get("lr_schedule", self.lr_schedule) == "plateau"
            or spec.params.get("early_stopping_patience") is not None
            for spec in self.techniques
        )

    def resolved(self):
        """The recipe with ``validation_split`` decided (see its attribute)."""
        if self.validation_split is not None:
            return self
        split = DEFAULT_VALIDATION_SPLIT if self.needs_validation() else 0.0
        return dataclasses.replace(self, validation_split=split)

    def to_dict(self):
        """Returns the recipe as JSON-friendly plain data."""
        data = dataclasses.asdict(self)
        data["techniques"] = [dataclasses.asdict(spec) for spec in self.techniques]
        return data


def _require_text(key, value):
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(key, value, "must be a non-empty string")
