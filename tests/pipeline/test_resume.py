"""Resumable runs: one backup folder per training, named by phase and order, under the recipe's fingerprint."""

import os

from kopt.pipeline import Recipe
from kopt.pipeline import resume


def test_the_fingerprint_follows_the_settings_not_the_output_paths(tmp_path):
    a = resume.resume_root(Recipe(epochs=2, export_dir=str(tmp_path)))
    assert os.path.dirname(a) == os.path.join(str(tmp_path), resume.RESUME_FOLDER)
    assert resume.resume_root(Recipe(epochs=2, export_dir=str(tmp_path), report=str(tmp_path / "r.json"))) == a
    assert resume.resume_root(Recipe(epochs=3, export_dir=str(tmp_path))) != a
    assert resume.resume_root(Recipe(epochs=2, seed=1, export_dir=str(tmp_path))) != a


def test_trainings_are_numbered_within_their_phase_and_none_outside(tmp_path):
    root = str(tmp_path / "run")
    assert resume.next_backup_dir() is None
    with resume.phase(root, "baseline"):
        assert resume.next_backup_dir() == os.path.join(root, "baseline", "training-0")
        with resume.phase(root, "1-prune"):
            assert resume.next_backup_dir() == os.path.join(root, "1-prune", "training-0")
            assert resume.next_backup_dir() == os.path.join(root, "1-prune", "training-1")
        assert resume.next_backup_dir() == os.path.join(root, "baseline", "training-1")
    with resume.phase(None, "baseline"):  # a search trial: nothing backed up
        assert resume.next_backup_dir() is None


def test_finish_removes_the_run_and_an_empty_resume_folder_only(tmp_path):
    mine, other = tmp_path / ".kopt_resume" / "mine", tmp_path / ".kopt_resume" / "other"
    for folder in (mine, other):
        (folder / "baseline").mkdir(parents=True)
    resume.finish(str(mine))
    assert not mine.exists() and other.exists()
    resume.finish(str(other))
    assert not (tmp_path / ".kopt_resume").exists()
    resume.finish(None)  # nothing to do
