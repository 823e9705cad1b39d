"""The search's state on disk, so that a killed run resumes where it stopped.

An output directory holds ``state.json`` (the settings' fingerprint, every point
tried, which model is current and which is best, time spent) and the models it
names, ``models/step-K.keras`` and their int8 files ``models/step-K.tflite``. Models are written first, each atomically, then
``state.json`` atomically: the JSON is the commit point. A run killed at any
moment leaves either the previous state with its models or the new one with
its models, never a state naming a half-written file. Models no longer named
are deleted after the commit.

Example:

>>> import tempfile
>>> state = RunState(tempfile.mkdtemp())
>>> state.load("abc") is None
True
>>> state.commit({"key": "abc", "points": []})
>>> state.load("abc")["points"]
[]
"""

import json
import os

import keras

from tflite_export.atomic import atomic_output_path
from tflite_export.atomic import atomic_write_json

__all__ = ["RunState"]

STATE_VERSION = 1


class RunState:
    """Reads and commits the search's state in ``directory``.

    Args:
        directory: The output directory (created if missing).
    """

    def __init__(self, directory: str):
        if not isinstance(directory, (str, os.PathLike)) or not os.fspath(directory):
            raise ValueError(f"directory must be a path. Received: directory={directory!r}")
        self.directory = os.fspath(directory)
        os.makedirs(os.path.join(self.directory, "models"), exist_ok=True)
        self.path = os.path.join(self.directory, "state.json")

    def load(self, key: str) -> dict | None:
        """Returns the saved state, or ``None`` if there is none yet.

        Raises:
            ValueError: If the directory holds a run with other settings, model or
                data (its fingerprint differs from ``key``), or an unreadable state.
        """
        if not os.path.isfile(self.path):
            return None
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as err:
            raise ValueError(f"cannot read the search state {self.path!r} ({err}); delete it to start over") from err
        if data.get("key") != key:
            raise ValueError(
                f"output_dir {self.directory!r} holds a search with other settings, model or data; "
                f"use another directory, or delete {self.path!r} to start over. Received: output_dir={self.directory!r}"
            )
        return data

    def model_path(self, step: int) -> str:
        """Where the model of ``step`` is kept."""
        return os.path.join(self.directory, "models", f"step-{int(step)}.keras")

    def tflite_path(self, step: int) -> str:
        """Where the int8 file of ``step`` is kept."""
        return os.path.join(self.directory, "models", f"step-{int(step)}.tflite")

    def save_model(self, model: keras.Model, step: int) -> str:
        """Writes the model of ``step`` atomically (before the state that names it)."""
        path = self.model_path(step)
        with atomic_output_path(path) as tmp:
            model.save(tmp)
        return path

    def load_model(self, step: int) -> keras.Model:
        """Loads the model of ``step``."""
        return keras.models.load_model(self.model_path(step), compile=False)

    def commit(self, data: dict) -> None:
        """Writes ``state.json`` atomically, then deletes models it no longer names."""
        atomic_write_json(self.path, {**data, "version": STATE_VERSION})
        steps = {data[role]["step"] for role in ("current", "best") if data.get(role)}
        kept = {f"step-{step}{suffix}" for step in steps for suffix in (".keras", ".tflite")}
        folder = os.path.join(self.directory, "models")
        for name in os.listdir(folder):
            if name.startswith("step-") and name.endswith((".keras", ".tflite")) and name not in kept:
                os.remove(os.path.join(folder, name))
