"""benchmarks/run.py: flags, the commands it states, orchestration with stand-in benchmarks, one tiny real run."""

import dataclasses
import json
import os
import sys

import numpy as np
import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from benchmarks import harness  # noqa: E402
from benchmarks import markdown  # noqa: E402
from benchmarks import run  # noqa: E402
from benchmarks import tfmot_env  # noqa: E402
from benchmarks.clustering_kopt import ClusteringSettings  # noqa: E402
from benchmarks.extras_kopt import ExtrasSettings  # noqa: E402
from tests.benchmarks import test_run_rows as rows_tests  # noqa: E402


@pytest.fixture
def parsed_flags():
    def parse(*args):
        flags.FLAGS.unparse_flags()
        flags.FLAGS(["run", *args])
        return flags.FLAGS

    yield parse
    flags.FLAGS.unparse_flags()


def options(tmp_path, *, quick=False, seeds=(0, 1, 2), data=None):
    return harness.Options(
        data=str(data or tmp_path / "d.npz"),
        data_label=harness.DEFAULT_DATA,
        seeds=list(seeds),
        quick=quick,
        output_dir=str(tmp_path),
        markdown_path=str(tmp_path / "B.md"),
        command="python -m benchmarks.run",
        skip_tfmot=True,
        tfmot_timeout_s=60,
        keep_files=False,
    )


def test_parse_only_keeps_run_order_and_refuses_unknown_names():
    assert run.parse_only(["extras", "pruning"]) == ["pruning", "extras"]
    with pytest.raises(app.UsageError, match="Received: --only=pruning,schedules"):
        run.parse_only(["pruning", "schedules"])
    with pytest.raises(app.UsageError, match="--only must name one or more"):
        run.parse_only([])


def test_benchmark_command_reruns_one_benchmark_as_the_run_did():
    assert run.benchmark_command(
        "pruning",
        [0, 1],
        quick=False,
        data_label=harness.DEFAULT_DATA,
        skip_tfmot=True,
        extra_flags=["--sparsities=0.5"],
    ) == ("python -m benchmarks.pruning --seeds=0,1 --skip_tfmot --sparsities=0.5")
    # Clustering never runs tfmot: no --skip_tfmot for it.
    assert run.benchmark_command("clustering", [2], quick=True, data_label="x.npz", skip_tfmot=True) == (
        "python -m benchmarks.clustering --seeds=2 --quick --data=x.npz"
    )


def test_main_refuses_bad_flags_before_any_work(parsed_flags):
    with pytest.raises(app.UsageError, match="unexpected arguments"):
        run.main(["run", "extra"])
    parsed_flags("--only=extras", "--sparsities=0.5")
    with pytest.raises(app.UsageError, match="--sparsities is a flag of the pruning benchmark"):
        run.main(["run"])
    parsed_flags("--only=nope")
    with pytest.raises(app.UsageError, match="--only must name"):
        run.main(["run"])
    parsed_flags("--sparsities=2", "--data=" + os.path.join(REPO_ROOT, "setup.py"))
    with pytest.raises(app.UsageError, match="--sparsities must be in"):
        run.main(["run"])


class StandIn:
    """A suite (as ``suite.Suite``) whose ``run_benchmark`` returns a made-up document, or raises."""

    def __init__(self, settings, uses_tfmot, document=None, error=None, quick_seeds=1):
        self.settings, self.uses_tfmot, self.quick_seeds = settings, uses_tfmot, quick_seeds
        self.document, self.error, self.calls = document, error, []

    def run_benchmark(self, *arguments, **keywords):
        self.calls.append((arguments, keywords))
        if self.error:
            raise self.error
        return {**self.document, "wall_time_s": 60.0, "command": keywords["command"]}


def without_files(run_):
    for entry in [run_["dense"], *run_["pruned"].values()]:
        entry.pop("tflite_float32_path")
    return run_


def test_run_all_copies_figures_into_one_first_section_and_reports_a_failing_benchmark(
    tmp_path, monkeypatch, parsed_flags
):
    parsed_flags()
    pruning_document = rows_tests.pruning_document({str(s): without_files(rows_tests.pruning_run()) for s in (0, 1)})
    pruning = StandIn(lambda quick, _: f"settings quick={quick}", True, pruning_document)
    clustering = StandIn(lambda quick, _: "c", False, error=RuntimeError("out of memory"), quick_seeds=2)
    monkeypatch.setattr(run, "BENCHMARKS", {"pruning": pruning, "clustering": clustering})
    tfmot = tfmot_env.TfmotEnv(python=None, reason="skipped with --skip_tfmot")
    document = run.run_all(["pruning", "clustering"], options(tmp_path, quick=True), tfmot)

    ((arguments, keywords),) = pruning.calls
    assert arguments[1:] == ([0], "settings quick=True", tfmot)  # Quick: one seed, its settings, the shared env.
    assert keywords["keep_files"] and keywords["quick"] and keywords["workdir"].endswith("pruning")
    assert keywords["markdown_path"] == str(tmp_path / "B.md")
    ((arguments, keywords),) = clustering.calls
    # Every suite gets the same call: a suite without tfmot ignores the environment.
    assert arguments[1:] == ([0, 1], "c", tfmot) and keywords.keys() == pruning.calls[0][1].keys()
    saved = json.loads((tmp_path / "summary_quick.json").read_text())
    rows = {row["key"]: row for row in saved["rows"]}
    # Figures copied from the benchmark's document, nothing typed.
    assert rows["kopt_prune_0.9"]["per_seed"]["0"]["tflite_accuracy"] == pytest.approx(97.0)
    assert rows["kopt_prune_0.9"]["mean"]["step_ratio"] == pytest.approx(1.1)
    assert rows["tfmot_prune_0.9"]["status"] == "not run"
    # Each row states the machine and its side's versions.
    assert "usable cores" in rows["kopt_prune_0.9"]["machine"] and "keras" in rows["kopt_prune_0.9"]["versions"]
    assert rows["tfmot_prune_0.9"]["versions"] == "not run (skipped with --skip_tfmot)"
    assert rows["clustering_failed"]["reason"] == "RuntimeError: out of memory"
    assert saved["failures"] == {"clustering": "RuntimeError: out of memory"}
    text = (tmp_path / "B.md").read_text()
    assert text.startswith(markdown.HEADER) and "<!-- summary:begin -->" in text
    assert document["section"] in text and "`benchmarks.clustering`: failed: RuntimeError" in text
    assert (tmp_path / "summary_quick.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_tiny_real_run_of_the_extras_benchmark(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=400)
    images = (rng.random((400, 28, 28)) * 60 + labels[:, None, None] * 19).astype("uint8")
    data = tmp_path / "d.npz"
    np.savez(data, x_train=images[:300], y_train=labels[:300], x_test=images[300:], y_test=labels[300:])
    clustering = ClusteringSettings(dense_epochs=1, prune_epochs=1, cluster_epochs=1, number_of_clusters=4)
    tiny = ExtrasSettings(dense_epochs=1, finetune_epochs=2, mask_frequency=2, clustering=clustering)
    monkeypatch.setattr(
        run, "BENCHMARKS", {"extras": dataclasses.replace(run.BENCHMARKS["extras"], settings=lambda quick, _: tiny)}
    )
    monkeypatch.setitem(run.LATENCY, True, {"rounds": 2, "runs": 3, "warmup": 1})
    tfmot = tfmot_env.TfmotEnv(python=None, reason="skipped with --skip_tfmot")
    document = run.run_all(["extras"], options(tmp_path, quick=True, seeds=(0,), data=data), tfmot)

    rows = {row["key"]: row for row in document["rows"]}
    assert rows["kopt_float"]["mean"]["latency_ratio"] == 1.0
    structured = rows["kopt_structured"]["mean"]
    assert structured["params"] < rows["kopt_float"]["mean"]["params"] and structured["latency_ms"] > 0
    assert structured["agreement"] == pytest.approx(100.0)
    assert rows["kopt_m_by_n_2_4"]["mean"]["nonzero_params"] <= 0.51 * rows["kopt_float"]["mean"]["params"]
    assert rows["keras_keras_int8"]["status"] == "ran" and "gzip_kb" not in rows["keras_keras_int8"]["mean"]
    assert rows["tfmot_cluster"]["status"] == "not run"
    text = (tmp_path / "B.md").read_text()
    assert text.index("<!-- summary:begin -->") < text.index("<!-- extras:begin -->")
    assert not os.path.exists(os.path.dirname(rows["kopt_float"]["seeds"]["0"]["file"]))  # The run's files are gone.
