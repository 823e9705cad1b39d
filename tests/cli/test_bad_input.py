"""Bad input to kopt-optimize, as a careless user or an attacker gives it (issue 20).

Every case ends in one ``kopt-optimize: error:`` line and exit status 2 before any
training (no export folder appears), never a traceback or a silently wrong run.
"""

import numpy as np
import pytest

from tests.cli.in_process import is_refused
from tests.cli.in_process import refused

_BOMB = 'a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]\n' + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10)
)


def _npz(tmp, *, nan_in=None, label=None, dtype=np.int64, same=False, tokens=False):
    rng = np.random.default_rng(0)
    x_train, x_test = rng.random((60, 8, 8)).astype(np.float32), rng.random((20, 8, 8)).astype(np.float32)
    if tokens:  # (N, T) token ids, which no built-in CNN reads
        x_train, x_test = rng.integers(0, 50, (60, 9)), rng.integers(0, 50, (20, 9))
    y_train, y_test = (np.arange(60) % 10).astype(dtype), (np.arange(20) % 10).astype(dtype)
    if nan_in == "train":
        x_train[4, 3, 3] = np.nan
    if nan_in == "test":
        x_test[11, 0, 0] = np.nan
    if label is not None:
        y_train[5] = label
    if same:
        y_train[:] = 3
    path = tmp / "data.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return f"--dataset=npz:{path}"


def _file(tmp, name, content):
    path = tmp / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(path)


def _recipe(tmp, stages):
    text = "epochs: 1\ntechniques:\n" + "".join(f"  - {stage}\n" for stage in stages)
    return "--recipe=" + _file(tmp, "r.yaml", text)


CASES = [
    (lambda t: [_npz(t, nan_in="train")], "x_train holds 1 NaN or infinite pixel values (images [4])"),
    (lambda t: [_npz(t, nan_in="test")], "x_test holds 1 NaN or infinite pixel values (images [11])"),
    (lambda t: [_npz(t, label=1000)], "labels run up to 1000, which means 1001 classes"),
    (lambda t: [_npz(t, label=10**9)], "y_train[5] is 1000000000, which would mean 1000000001 classes"),
    (lambda t: [_npz(t, label=2**31)], "y_train[5] is 2147483648"),
    (lambda t: [_npz(t, label=2**32 + 3, dtype=np.uint64)], "y_train[5] is 4294967299"),
    (lambda t: [_npz(t, same=True)], "every training label is 3; a classifier needs at least 2 classes"),
    (lambda t: [_npz(t), "--num_classes=5"], "--num_classes=5: "),
    (lambda t: [_npz(t, tokens=True)], "--model=small_cnn: the built-in models take images, and this dataset's"),
    (
        lambda t: ["--prune=0.8", "--qat", "--sparse_weights"],
        "--sparse_weights=True: the int8 file would store the weights of Dense layer(s)",
    ),
    (
        lambda t: [_recipe(t, ["{name: ptq, params: {mode: int8}}", "{name: prune, params: {target_sparsity: 0.5}}"])],
        "techniques[0].name=ptq: its int8 export would be dropped",
    ),
    (
        lambda t: [_recipe(t, ["{name: qat}", "{name: ptq, params: {mode: int8}}"])],
        "techniques[1].name=ptq: choose qat or ptq, not both",
    ),
    (
        lambda t: [_recipe(t, ["{name: prune, params: {target_sparsity: 0.5}}", "{name: qat}"])],
        "techniques[1].params.preserve=(not set): qat after prune must say what it keeps",
    ),
    (lambda t: ["--report=" + _file(t, "a_file", "x") + "/r.json"], "--report={tmp}/a_file/r.json: its folder"),
    (lambda t: [f"--report={(t / 'dir.json').mkdir() or t / 'dir.json'}"], "is a folder"),
    (lambda t: ["--report=/proc/kopt_report.json"], "cannot create files in its folder /proc"),
    (lambda t: ["--export_dir=" + _file(t, "a_file", "x")], "--export_dir={tmp}/a_file: is a file"),
    (lambda t: ["--export_dir=/proc/kopt_out"], "--export_dir=/proc/kopt_out: cannot create files in it"),
    (lambda t: ["--recipe=" + _file(t, "bomb.yaml", _BOMB)], "expands to more than 10000 values"),
    (
        lambda t: ["--recipe=" + _file(t, "e.yaml", "epochs: 1\n"), "--techniques=none"],
        "--techniques=none: a --recipe file lists its own techniques",
    ),
    (lambda t: ["--techniques=none", "--cluster=8"], "--techniques=none: asks for a float-only run, but --cluster"),
    (lambda t: ["--recipe=" + _file(t, "latin.yaml", "dataset: caf\xe9\n".encode("latin-1"))], "is not UTF-8 text"),
    (lambda t: ["--recipe=" + _file(t, "keys.yaml", "epochs: 1\n7: 2\n")], "the key 7 is not a string"),
    (lambda t: ["--recipe=" + _file(t, "dup.yaml", "epochs: 1\nepochs: 2\n")], "the key 'epochs' appears twice"),
    (lambda t: ["--dataset=" + "x" * 100_000], "... (100000 characters): unknown dataset"),
    (lambda t: ["--tune=random", "--size_budget_kib=nan"], "--size_budget_kib=nan: must be a number of KiB above 0"),
    (lambda t: ["--batch_size=99999999999999999999"], "--batch_size=99999999999999999999: must be at most"),
    (lambda t: ["--techniques=none", "--qat_scheme=16x8"], "--qat_scheme=16x8: only means something with --qat"),
    (
        lambda t: ["--techniques=none", "--quantized_io=int8"],
        "--quantized_io=int8: only means something with --qat or --ptq",
    ),
    (lambda t: ["--cluster_per_channel"], "--cluster_per_channel=True: only means something with --cluster"),
    (
        lambda t: ["--techniques=none", "--prune_schedule=constant"],
        "--prune_schedule=constant: only means something with --prune",
    ),
    (lambda t: ["--temperature=2"], "--temperature=2.0: only means something with --distill"),
    (lambda t: ["--techniques=none", "--finetune_epochs=2"], "--finetune_epochs=2: only means something with --prune"),
]


@pytest.mark.parametrize("make_args, expected", CASES)
def test_bad_input_is_refused_in_one_line_before_training(tmp_path, monkeypatch, make_args, expected):
    # In process (tests/cli/in_process.py): training raises, so a case refused only after it cannot pass.
    is_refused(refused(make_args(tmp_path), tmp_path, monkeypatch), expected, tmp_path)
