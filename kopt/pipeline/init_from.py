"""``init_from``: the run's model starts from a saved model's weights, not from scratch.

``kopt-optimize --init_from=trained.keras`` (recipe key ``init_from``) loads the
file and copies every weight of it that fits the model the run builds, with
:func:`kopt.transfer.transfer_weights` (layers matched by name; a resized layer
gets the overlap), before float training starts. The transfer report goes to
the log and into the run's report under ``init_from``. A missing or unreadable
file, or one none of whose weights fits, is a :class:`kopt.ConfigError` keyed
``init_from``, raised before any training and before any file is written.
"""

import os

import keras
from absl import logging

from kopt.errors import ConfigError
from kopt.models.registry import load_saved_model
from kopt.transfer import transfer_weights

__all__ = ["SUFFIX", "check_init_from", "initialize_from"]

SUFFIX = ".keras"


def check_init_from(path) -> None:
    """Raises :class:`kopt.ConfigError` keyed ``init_from`` unless ``path`` is ``None`` or a ``.keras`` path.

    Whether the file exists is checked when it is loaded, still before training.

    Example:

    >>> check_init_from("trained.h5")
    Traceback (most recent call last):
    ...
    kopt.errors.ConfigError: init_from=trained.h5: must be a path to a .keras file saved by model.save()
    """
    if path is None:
        return
    if not isinstance(path, str) or not path.strip() or not path.endswith(SUFFIX):
        raise ConfigError("init_from", path, f"must be a path to a {SUFFIX} file saved by model.save()")


def initialize_from(model: keras.Model, path: str) -> dict:
    """Copies the weights of the ``.keras`` file at ``path`` that fit into ``model``.

    Args:
        model: The run's freshly built model (changed in place).
        path: A ``.keras`` file.

    Returns:
        The report entry: ``path`` (absolute) and
        :meth:`kopt.transfer.TransferReport.to_dict`.

    Raises:
        ConfigError: Keyed ``init_from``: the file is missing or not a Keras
            model, its layer names repeat, or not one of its weights fits.
    """
    check_init_from(path)
    if not os.path.isfile(path):
        raise ConfigError("init_from", path, f"file not found: {os.path.abspath(path)}")
    source = load_saved_model(path, key="init_from")
    try:
        report = transfer_weights(source, model)
    except ValueError as err:
        raise ConfigError("init_from", path, str(err)) from err
    if not report.transferred_any:
        example = report.skipped[0] if report.skipped else None
        detail = f"; e.g. {example.name}: {example.reason}" if example is not None else ""
        raise ConfigError(
            "init_from",
            path,
            f"none of its weights fits model {model.name!r}: layers are matched by name, and no layer name of "
            f"the file ({', '.join(report.unused_source_layers[:5]) or 'none with weights'}) is in the model"
            f"{detail}",
        )
    logging.info("Initialized model %s from %s: %s", model.name, path, report.format())
    return {"path": os.path.abspath(path), **report.to_dict()}
