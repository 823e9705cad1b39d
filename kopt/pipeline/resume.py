"""Resumable runs: every training of a ``kopt-optimize`` run is backed up, so a rerun continues.

A run keeps its backups under ``<export_dir>/.kopt_resume/<fingerprint>/``, the
fingerprint being a hash of the resolved recipe, so only the same run resumes
from them. The driver names each phase (``baseline``, then ``1-prune``,
``2-qat``...) with :func:`phase`; :func:`next_backup_dir` gives each training in
a phase its own folder, in call order, and
:func:`kopt.pipeline.classifier_training.train_classifier` trains with a
:class:`kopt.distribute.BackupAndRestore` there. A finished training keeps its
backup, at its last epoch, until the run ends: a rerun restores it and skips
straight past it, then resumes the interrupted one at its last step. SIGTERM
(preemption) saves that step and stops with :class:`kopt.distribute.Preempted`.
The backups are deleted once the run has written its files.
"""

import contextlib
import contextvars
import hashlib
import json
import os
import shutil

__all__ = ["RESUME_FOLDER", "finish", "next_backup_dir", "phase", "resume_root"]

RESUME_FOLDER = ".kopt_resume"
_PHASE = contextvars.ContextVar("kopt_resume_phase", default=None)


class _Phase:
    def __init__(self, path):
        self.path = path
        self.trainings = 0


def resume_root(recipe):
    """The folder of ``recipe``'s backups: ``<export_dir>/.kopt_resume/<fingerprint>``.

    Example:

    >>> from kopt.pipeline import Recipe
    >>> a, b = resume_root(Recipe(epochs=2)), resume_root(Recipe(epochs=3))
    >>> a.startswith("kopt_export/.kopt_resume/"), a == b
    (True, False)
    """
    settings = {key: value for key, value in recipe.to_dict().items() if key not in ("export_dir", "report")}
    text = json.dumps(settings, sort_keys=True, default=str)
    return os.path.join(recipe.export_dir, RESUME_FOLDER, hashlib.sha256(text.encode()).hexdigest()[:16])


@contextlib.contextmanager
def phase(root, name):
    """Trainings inside the ``with`` block back up under ``root/name``; ``root=None`` backs nothing up."""
    token = _PHASE.set(_Phase(os.path.join(root, name)) if root is not None else None)
    try:
        yield
    finally:
        _PHASE.reset(token)


def next_backup_dir():
    """The backup folder of the next training in the current phase, or ``None`` outside one.

    Example:

    >>> with phase("/tmp/run", "baseline"):
    ...     next_backup_dir(), next_backup_dir()
    ('/tmp/run/baseline/training-0', '/tmp/run/baseline/training-1')
    >>> next_backup_dir() is None
    True
    """
    current = _PHASE.get()
    if current is None:
        return None
    path = os.path.join(current.path, f"training-{current.trainings}")
    current.trainings += 1
    return path


def finish(root):
    """Deletes a finished run's backups (and the resume folder once it is empty)."""
    if root is None:
        return
    shutil.rmtree(root, ignore_errors=True)
    with contextlib.suppress(OSError):
        os.rmdir(os.path.dirname(root))  # only if no other run's backups are there
