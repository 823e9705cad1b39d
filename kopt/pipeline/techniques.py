"""The extension point of the pipeline: optimization techniques as registered stages.

A technique (pruning, QAT, clustering, distillation...) plugs into ``kopt-optimize``
by registering a :class:`Technique`; the driver applies the recipe's techniques in
order and neither the driver nor the CLI grows a branch per technique::

    @register_technique
    class Prune(Technique):
        name = "prune"

        def apply(self, model, context, params):
            ...  # wrap, fine-tune on context.train, return the model
            return model

        def strip(self, model):
            return strip_pruning(model)
"""

from kopt.errors import ConfigError
from kopt.pipeline.settings import check_params
from kopt.pipeline.settings import param_keys as declared_keys
from kopt.pipeline.settings import read

_REGISTRY = {}


class Technique:
    """Base class of an optimization stage.

    Attributes:
        name: The name recipes use for the technique.
        export_mode: The ``tflite_export.convert`` mode its result is exported with
            when it is the last technique of a recipe (e.g. ``"int8"`` after QAT).
        settings: The frozen dataclass declaring its params with
            :func:`kopt.pipeline.settings.setting` (keys, defaults, checks,
            flags), or ``None`` to accept any params.
        param_keys: The params it understands (by default read from
            ``settings``), or ``None`` to accept any; the driver rejects any
            other key before training.
    """

    name = None
    export_mode = "float32"
    settings = None

    @property
    def param_keys(self):
        return None if self.settings is None else declared_keys(self.settings)

    def values(self, params):
        """``params`` as its ``settings`` dataclass, defaults filled in."""
        return read(self.settings, params)

    def with_earlier_stages(self, params, earlier):
        """Completes params that depend on the stages before it, for ``kopt-optimize``'s flags.

        Flags build the stages in order; a recipe file states these params itself.

        Args:
            params: The params read from the flags.
            earlier: The :class:`kopt.pipeline.TechniqueSpec` of the stages before it.

        Returns:
            The params to use (by default ``params``).
        """
        del earlier
        return params

    def apply(self, model, context, params):
        """Returns the optimized (possibly wrapped) model, trained as needed.

        Args:
            model: The model so far: the float baseline or an earlier stage's output.
            context: A :class:`kopt.pipeline.StageContext` (data, recipe, paths).
            params: The technique's settings from its ``TechniqueSpec``.
        """
        raise NotImplementedError(f"Technique {type(self).__name__} must implement apply().")

    def strip(self, model):
        """Returns a plain Keras model with the technique's training wrappers removed."""
        return model

    def check(self, params):
        """Raises :class:`kopt.ConfigError` for bad ``params`` before any training.

        By default checks each declared setting's type, bounds and choices.
        """
        if self.settings is not None:
            check_params(self.name, self.settings, params)

    def check_recipe(self, recipe, params):
        """Raises :class:`kopt.ConfigError` for ``params`` that clash with ``recipe``.

        Runs after :meth:`check`, before any training; by default it rejects
        params outside :attr:`param_keys`.
        """
        del recipe
        if self.param_keys is None:
            return
        for key in params:
            if key not in self.param_keys:
                raise ConfigError(
                    f"{self.name}.{key}", params[key], f"unknown setting; known: {', '.join(sorted(self.param_keys))}"
                )

    def check_data(self, info, params):
        """Raises :class:`kopt.ConfigError` for ``params`` that do not fit the data.

        Runs once the data is loaded, before the baseline trains: files a stage
        will load (a teacher) are loaded and checked here, so a bad one costs
        no training.

        Args:
            info: The :class:`kopt.data.DatasetInfo` (input shape, classes).
            params: The technique's settings.
        """
        del info, params

    def check_model(self, model, params):
        """Raises :class:`kopt.ConfigError` for ``params`` that do not fit the model.

        Runs once the model is built, before the baseline trains: layer names a
        stage will look for are checked here, so a misspelt one costs no training.
        Stages after one whose class sets ``replaces_model = True`` (distillation)
        are checked on its :meth:`replacement_model` (the student), or, where that
        is ``None``, not here; they can check again in :meth:`apply`.

        Args:
            model: The model the stage will receive (the recipe's, or a
                student), not yet trained.
            params: The technique's settings.
        """
        del model, params

    def replacement_model(self, info, params):
        """The model later stages will receive, untrained, when this stage replaces the model.

        Only asked of a technique whose class sets ``replaces_model = True``, before
        the baseline trains, so that later stages' :meth:`check_model` and the
        file-layout checks see the model they will really get.

        Args:
            info: The :class:`kopt.data.DatasetInfo` (input shape, classes).
            params: The technique's settings.

        Returns:
            A ``keras.Model``, or ``None`` when it cannot be known before training
            (later stages are then checked in their :meth:`apply`).
        """
        del info, params
        return None

    def export_options(self, params):
        """``tflite_export.convert`` options for the result, when this technique is last.

        Returns:
            A dict with ``mode`` and optionally ``inference_input_type``,
            ``inference_output_type``, and ``representative_dataset=None`` for a
            file the converter must not calibrate (integer modes otherwise
            calibrate on the training data); by default ``{"mode": self.export_mode}``.
        """
        del params
        return {"mode": self.export_mode}

    def file_options(self, params):
        """``tflite_export.convert`` options on the file's layout that hold whichever stage comes last.

        Returns:
            A dict such as ``{"sparse_weights": True}``; by default empty.
        """
        del params
        return {}


def register_technique(cls):
    """Class decorator that makes a :class:`Technique` available by its ``name``."""
    if not (isinstance(cls, type) and issubclass(cls, Technique)):
        raise TypeError(f"register_technique expects a Technique subclass. Received: {cls!r}")
    if not isinstance(cls.name, str) or not cls.name:
        raise ValueError(f"Technique {cls.__name__} needs a non-empty string `name`. Received: name={cls.name!r}")
    existing = _REGISTRY.get(cls.name)
    if existing is not None and existing is not cls:
        raise ValueError(
            f"A technique named {cls.name!r} is already registered ({existing.__module__}.{existing.__name__})."
        )
    _REGISTRY[cls.name] = cls
    return cls


def get_technique(name):
    """Returns a new instance of the technique registered as ``name``.

    Raises:
        ConfigError: If no technique has that name; the message lists the known ones.
    """
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) or "none registered"
        raise ConfigError("techniques", name, f"unknown technique; known: {known}")
    return _REGISTRY[name]()


def registered_techniques(*, in_registration_order=False):
    """Returns the names of all registered techniques, sorted or in the order they registered."""
    return list(_REGISTRY) if in_registration_order else sorted(_REGISTRY)
