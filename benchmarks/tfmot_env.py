"""The virtual environment in which benchmarks run tensorflow-model-optimization.

tfmot works only with the legacy Keras 2 (``tf_keras``, selected by
``TF_USE_LEGACY_KERAS=1``), which cannot share a process with Keras 3. kopt never
imports it: benchmarks start a worker script with the Python of this environment.

:func:`ensure_tfmot_env` creates ``benchmarks/.venv-tfmot`` on first use and reuses
it afterwards, so later benchmarks (and ``benchmarks/run.py``) pay the install once.

Pinned choices:

* ``tensorflow-cpu`` at the version kopt itself uses, so both sides run the same
  TensorFlow runtime and TFLite converter.
* ``tf_keras`` of the same minor version, installed with ``--no-deps``: its
  metadata asks for the ``tensorflow`` wheel, which ships the same package as
  ``tensorflow-cpu`` and must not be installed beside it.
* the newest ``tensorflow-model-optimization`` 0.8 release.
"""

import dataclasses
import json
import os
import pathlib
import subprocess
import sys

TENSORFLOW_VERSION = "2.21.0"
_TF_MINOR = ".".join(TENSORFLOW_VERSION.split(".")[:2])
REQUIREMENTS = (
    f"tensorflow-cpu=={TENSORFLOW_VERSION}",
    "tensorflow-model-optimization~=0.8.0",
    "ai-edge-litert>=1.2",
    "numpy",
)
NO_DEPS_REQUIREMENTS = (f"tf_keras=={_TF_MINOR}.*",)
DEFAULT_VENV_DIR = pathlib.Path(__file__).resolve().parent / ".venv-tfmot"
_MARKER = "kopt-benchmark-requirements.json"
_INSTALL_TIMEOUT_S = 1800
_PROBE_TIMEOUT_S = 300
_PROBE = """
import json
import ai_edge_litert
import numpy
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras
from importlib import metadata
print(json.dumps({
    "tensorflow": tf.__version__,
    "tf_keras": tf_keras.__version__,
    "tensorflow_model_optimization": tfmot.__version__,
    "ai_edge_litert": metadata.version("ai-edge-litert"),
    "numpy": numpy.__version__,
    "keras_in_use": tf.keras.__name__,
}))
"""


@dataclasses.dataclass(frozen=True)
class TfmotEnv:
    """Where tfmot can run, or why it cannot.

    Attributes:
        python: Path of the environment's Python, or ``None`` if it could not be made.
        reason: Why there is no environment; ``None`` when ``python`` is set.
        versions: Package versions seen inside the environment (empty without one).
    """

    python: str | None
    reason: str | None = None
    versions: dict = dataclasses.field(default_factory=dict)

    @property
    def available(self) -> bool:
        return self.python is not None


def legacy_keras_environ(base=None) -> dict:
    """Returns a copy of ``base`` (default ``os.environ``) that makes TF use tf_keras."""
    environ = dict(os.environ if base is None else base)
    environ["TF_USE_LEGACY_KERAS"] = "1"
    # A parent's PYTHONPATH would put the main environment's Keras 3 first.
    environ.pop("PYTHONPATH", None)
    return environ


def ensure_tfmot_env(venv_dir=DEFAULT_VENV_DIR, *, log=print, install_timeout_s=_INSTALL_TIMEOUT_S) -> TfmotEnv:
    """Creates (or reuses) the tfmot virtual environment.

    Args:
        venv_dir: Where the environment lives.
        log: Called with one line of progress at a time.
        install_timeout_s: Limit for creating the environment and each pip call.

    Returns:
        A :class:`TfmotEnv`; never raises for an install that fails, so a benchmark
        can report "not run" with the reason.
    """
    venv_dir = pathlib.Path(venv_dir)
    python = venv_dir / "bin" / "python"
    wanted = {"requirements": list(REQUIREMENTS), "no_deps": list(NO_DEPS_REQUIREMENTS)}
    marker = venv_dir / _MARKER
    if python.is_file() and marker.is_file() and _read_json(marker) == wanted:
        probed = _probe(python)
        if isinstance(probed, dict):
            log(f"Reusing tfmot environment {venv_dir}.")
            return TfmotEnv(python=str(python), versions=probed)
        log(f"The tfmot environment {venv_dir} is broken ({probed}); reinstalling.")
    steps = [
        ("create the virtual environment", [sys.executable, "-m", "venv", "--clear", str(venv_dir)]),
        ("install tfmot and TensorFlow", [str(python), "-m", "pip", "install", "--quiet", *REQUIREMENTS]),
        ("install tf_keras", [str(python), "-m", "pip", "install", "--quiet", "--no-deps", *NO_DEPS_REQUIREMENTS]),
    ]
    for what, command in steps:
        log(f"tfmot environment: {what} ...")
        failure = _run(command, install_timeout_s)
        if failure:
            return TfmotEnv(python=None, reason=f"could not {what}: {failure}")
    probed = _probe(python)
    if not isinstance(probed, dict):
        return TfmotEnv(python=None, reason=f"tfmot was installed but does not import: {probed}")
    marker.write_text(json.dumps(wanted), encoding="utf-8")
    log(f"tfmot environment ready: {probed}")
    return TfmotEnv(python=str(python), versions=probed)


def _probe(python):
    """Returns the versions dict, or a string saying why the imports failed."""
    try:
        result = subprocess.run(
            [str(python), "-c", _PROBE],
            env=legacy_keras_environ(),
            capture_output=True,
            text=True,
            timeout=_PROBE_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"{type(err).__name__}: {err}"
    if result.returncode != 0:
        return _last_line(result.stderr) or f"exit status {result.returncode}"
    try:
        return json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return f"unexpected probe output: {result.stdout[-200:]!r}"


def _run(command, timeout_s):
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"{type(err).__name__}: {err}"
    if result.returncode != 0:
        return _last_line(result.stderr) or f"exit status {result.returncode}"
    return None


def _last_line(text):
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("WARNING: Location")]
    return lines[-1].strip()[:300] if lines else ""


def _read_json(path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


if __name__ == "__main__":
    env = ensure_tfmot_env()
    print(json.dumps(dataclasses.asdict(env), indent=2))
    sys.exit(0 if env.available else 1)
