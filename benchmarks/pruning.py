"""Pruning benchmark: kopt.pruning and tensorflow-model-optimization, in the same run.

Both sides train the CNN of tfmot's "Pruning in Keras example" with that example's
model, epochs and optimizer and a practitioner's schedule, batch size and choice of
layers (see ``pruning_settings.py``, which says why), prune it
to each target sparsity, strip it, export float32 and int8 TFLite and score the
files in the LiteRT interpreter on the whole 10,000-image MNIST test set. tfmot runs
in its own virtual environment (``tfmot_env.py``) through
``tfmot_pruning_worker.py``; kopt never imports it.

Writes ``<output_dir>/pruning.json`` and ``pruning.png`` and rewrites the section
between ``<!-- pruning:begin -->`` and ``<!-- pruning:end -->`` of BENCHMARKS.md,
printing that section too. From the repository root::

    python -m benchmarks.pruning                      # 3 seeds, the benchmark's figures
    python -m benchmarks.pruning --quick --skip_tfmot # smoke run, a few minutes

A ``--quick`` run writes ``pruning_quick.{json,png,md}`` in ``--output_dir`` and
leaves BENCHMARKS.md alone unless ``--markdown`` is given.
"""

import dataclasses
import os

# Before TensorFlow is imported (by pruning_kopt, inside main): C++ info logs bury
# the benchmark's own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from benchmarks import harness  # noqa: E402 - defines the flags every benchmark shares.
from benchmarks import pruning_report  # noqa: E402
from benchmarks import suite  # noqa: E402
from benchmarks.pruning_settings import PruningSettings  # noqa: E402

__all__ = ["SUITE", "main", "parse_sparsities", "run_benchmark", "settings_from_flags"]

SECTION = "pruning"
WORKER = "tfmot_pruning_worker.py"

_SPARSITIES = flags.DEFINE_list("sparsities", ["0.5", "0.8", "0.9"], "Target sparsities in (0, 1).")
# The shared flags (--data, --seeds, --quick, --skip_tfmot, ...) are harness's;
# --help lists them as this benchmark's own.
flags.adopt_module_key_flags(harness)
_END_STEP_EPOCHS = flags.DEFINE_integer(
    "end_step_epochs", None, "End the sparsity ramp after this many fine-tuning epochs (default: 1).", lower_bound=1
)
_FREQUENCY = flags.DEFINE_integer(
    "frequency", None, "Steps between mask updates (default: 20; --quick: 10; tfmot's example: 100).", lower_bound=1
)


def parse_sparsities(values):
    """Parses and checks ``--sparsities``; raises ``app.UsageError`` naming a bad value."""
    sparsities = []
    for value in values:
        try:
            sparsity = float(value)
        except ValueError:
            raise app.UsageError(f"--sparsities must be numbers in (0, 1). Received: {value!r}") from None
        if not 0 < sparsity < 1:
            raise app.UsageError(f"--sparsities must be in (0, 1). Received: {value!r}")
        sparsities.append(sparsity)
    if not sparsities:
        raise app.UsageError("--sparsities must name at least one sparsity")
    return tuple(sparsities)


def settings_from_flags(flag_values=flags.FLAGS):
    """The :class:`PruningSettings` the parsed flags ask for (``--quick``, ``--sparsities``,
    ``--end_step_epochs``, ``--frequency``); raises ``app.UsageError`` for a bad one."""
    sparsities = parse_sparsities(flag_values.sparsities)
    settings = PruningSettings.quick(sparsities) if flag_values.quick else PruningSettings.full(sparsities)
    overrides = {"end_step_epochs": flag_values.end_step_epochs, "frequency": flag_values.frequency}
    return dataclasses.replace(settings, **{k: v for k, v in overrides.items() if v is not None})


def measure(data, seeds, settings, tfmot, *, workdir, tfmot_timeout_s):
    """Runs both sides for every seed, kopt first; returns ``frameworks``, ``summaries`` and ``targets``.

    Each side scores its own files (``pruning_kopt.run``, ``tfmot_pruning_worker.py``).
    """
    from benchmarks import pruning_kopt

    runs = suite.measure_sides(
        data,
        seeds,
        settings,
        tfmot,
        kopt_run=pruning_kopt.run,
        worker=WORKER,
        workdir=workdir,
        tfmot_timeout_s=tfmot_timeout_s,
    )
    frameworks = suite.frameworks_of(runs, tfmot)
    pruning_note = next((run["pruning_not_run"] for run in runs["kopt"].values() if "pruning_not_run" in run), None)
    if pruning_note:
        frameworks["kopt"]["versions"] = {**frameworks["kopt"]["versions"], "pruning": f"not run: {pruning_note}"}
    summaries = {name: pruning_report.summarize(entry, settings.sparsities) for name, entry in frameworks.items()}
    return {
        "frameworks": frameworks,
        "summaries": summaries,
        "targets": pruning_report.judge(summaries, settings.sparsities),
    }


def plot(document, settings, path):
    """Accuracy and size against sparsity, both sides (``pruning_plot``); returns ``path``."""
    from benchmarks import pruning_plot

    return pruning_plot.plot(document["summaries"], settings.sparsities, path)


SUITE = suite.Suite(
    name=SECTION,
    settings=lambda quick, flag_values: settings_from_flags(flag_values),
    measure=measure,
    plot=plot,
    render=lambda document, _: pruning_report.render_section(document, document["summaries"], document["targets"]),
    uses_tfmot=True,
)
run_benchmark = SUITE.run_benchmark
main = suite.main_for(SUITE)


if __name__ == "__main__":
    app.run(main)
