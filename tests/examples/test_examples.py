"""The examples run as documented."""

import os
import re
import subprocess
import sys

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "examples")


def test_train_and_export_runs_and_reports_agreement(tmp_path):
    output = tmp_path / "digits.tflite"
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(EXAMPLES, "train_and_export.py"),
            "--epochs=2",
            f"--output={output}",
            "--mode=int8",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    match = re.search(r"agreement (\d\.\d+)", result.stdout)
    assert match and float(match.group(1)) >= 0.95
    assert output.stat().st_size > 0


def test_distributed_pruning_reaches_its_sparsity_and_cleans_up_its_backup(tmp_path):
    backup = tmp_path / "backup"
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(EXAMPLES, "distributed_pruning.py"),
            "--epochs=2",
            "--sparsity=0.5",
            f"--backup_dir={backup}",
            "--strategy=one_device",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    match = re.search(r"strategy one_device: sparsity (\d\.\d+), test accuracy (\d\.\d+)", result.stdout)
    assert match and float(match.group(1)) == 0.5
    assert not backup.exists()  # a finished run deletes its backups


def test_train_and_export_takes_the_training_flags(tmp_path):
    output = tmp_path / "digits.tflite"
    args = [
        "--epochs=2",
        f"--output={output}",
        "--optimizer=nesterov",
        "--learning_rate=0.05",
        "--lr_schedule=plateau",
        "--warmup_epochs=1",
        "--mixed_precision=mixed_bfloat16",
    ]
    result = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, "train_and_export.py"), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "val_loss" in result.stdout  # plateau trained on a validation split carved from training
    match = re.search(r"agreement (\d\.\d+)", result.stdout)
    assert match and float(match.group(1)) == 1.0  # a float32 file, whatever the training precision
