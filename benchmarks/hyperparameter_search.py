"""Search benchmark: what a 10-trial KerasTuner search finds against kopt-optimize's default recipe.

The recipe: kopt's ``small_cnn`` on MNIST, float training, then 80% pruning
fine-tuned (kopt-optimize's defaults: Adam at 1e-3, constant rate). The default
recipe runs as is; the search runs ``--tune=bayesian --max_trials=10`` over the
default space (learning rate, optimizer, schedule), scoring each trial on the
validation split carved from the training data, then trains the best recipe.
Both final models are scored on the test split, which no trial sees. Both hold
out the same validation split, so they train on the same examples.

Writes ``<output_dir>/search.json``, ``search_trials.png`` and the section
between ``<!-- search:begin -->`` and ``<!-- search:end -->`` of BENCHMARKS.md::

    python -m benchmarks.hyperparameter_search             # seed 0, 10 trials
    python -m benchmarks.hyperparameter_search --quick     # smoke run: 3 trials on 2000 examples
"""

import dataclasses
import os
import shutil
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from benchmarks import harness  # noqa: E402
from benchmarks import machine  # noqa: E402
from benchmarks import markdown  # noqa: E402

SECTION = "search"
flags.adopt_module_key_flags(harness)


@dataclasses.dataclass(frozen=True)
class SearchSettings:
    """One configuration of the search benchmark."""

    epochs: int = 2
    finetune_epochs: int = 2
    batch_size: int = 128
    sparsity: float = 0.8
    tuner: str = "bayesian"
    max_trials: int = 10
    validation_split: float = 0.1
    # Eleven whole runs: a third of the 22k images keeps the search under half an hour on 2 cores.
    max_train_examples: int | None = 8000

    @classmethod
    def quick(cls):
        return cls(epochs=1, finetune_epochs=1, max_trials=3, max_train_examples=2000)

    def describe(self):
        train = markdown.training_examples(self.max_train_examples)
        return [
            f"- Data: {train}, {self.validation_split:.0%} held out for validation (trials are scored on it); "
            "the 10,000 MNIST test images score only the two final models.",
            f"- Recipe: `small_cnn`, {self.epochs} float epochs, batch {self.batch_size}, then `prune` at "
            f"{self.sparsity:.0%} with {self.finetune_epochs} fine-tuning epochs; default: Adam at 1e-3, constant.",
            f"- Search: KerasTuner `{self.tuner}`, {self.max_trials} trials over kopt's default space "
            "(learning rate log-uniform in [1e-4, 1e-2], optimizer adam/adamw/nesterov, schedule constant/cosine), "
            "objective the optimized .tflite's validation accuracy; the best recipe is then retrained.",
        ]


def _recipe(data, seed, settings, workdir, **search):
    from kopt.pipeline import Recipe
    from kopt.pipeline import TechniqueSpec

    prune = TechniqueSpec("prune", {"target_sparsity": settings.sparsity, "epochs": settings.finetune_epochs})
    return Recipe(
        dataset=f"npz:{data}",
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        seed=seed,
        validation_split=settings.validation_split,
        techniques=(prune,),
        export_dir=os.path.join(workdir, "search" if search else "default"),
        report=os.path.join(workdir, "search.json" if search else "default.json"),
        search=search or None,
    )


def run_benchmark(data, seed, settings, *, output_dir, markdown_path, command, quick=False):
    from benchmarks.schedules_run import subset_npz
    from kopt.pipeline import format_trials
    from kopt.pipeline import run

    started = time.time()
    machine_info = machine.describe_machine()
    workdir, owned = harness.make_workdir("kopt-search-benchmark-")
    data_used = subset_npz(data, settings.max_train_examples, workdir)
    mark = time.perf_counter()
    default = run(_recipe(data_used, seed, settings, workdir))
    default_s = time.perf_counter() - mark
    search = run(
        _recipe(
            data_used,
            seed,
            settings,
            workdir,
            tuner=settings.tuner,
            max_trials=settings.max_trials,
            directory=os.path.join(workdir, "tuner"),
        )
    )
    stem = harness.result_stem(SECTION, quick)
    os.makedirs(output_dir, exist_ok=True)
    plot = os.path.join(output_dir, f"{stem}_trials.png")
    shutil.copyfile(search["files"]["trials_png"], plot)
    best = search["search"]["best_recipe"]
    rows = {
        name: {
            "test_accuracy": 100 * report["optimized"]["tflite_accuracy"],
            "float_test_accuracy": 100 * report["baseline"]["tflite_accuracy"],
            "sparsity": report["optimized"]["sparsity"],
            "gzip_bytes": report["optimized"]["tflite_gzip_bytes"],
        }
        for name, report in (("default", default), ("searched", search))
    }
    margin = rows["searched"]["test_accuracy"] - rows["default"]["test_accuracy"]
    document = {
        **harness.run_fields(
            SECTION, command=command, quick=quick, started=started, seeds=[seed], machine_info=machine_info
        ),
        "settings": dataclasses.asdict(settings),
        "rows": rows,
        "best": {key: best[key] for key in ("learning_rate", "optimizer", "lr_schedule")},
        "trials": search["trials"],
        "search_s": search["timings_s"]["search"],
        "default_s": round(default_s, 1),
        "plot": os.path.relpath(plot, os.path.dirname(os.path.abspath(markdown_path))),
    }
    lines = (
        [
            "## Hyperparameter search against the default recipe",
            "",
            f"Command: `{command}`. {document['machine_line']}",
            "",
        ]
        + settings.describe()
        + [""]
    )
    lines += ["| recipe | float test acc | pruned test acc (TFLite) | sparsity | gzip bytes |", "|---|---|---|---|---|"]
    for name, row in rows.items():
        lines.append(
            f"| {name} | {row['float_test_accuracy']:.2f} | {row['test_accuracy']:.2f} | "
            f"{row['sparsity']:.3f} | {row['gzip_bytes']:,} |"
        )
    lines += [
        "",
        f"Best trial {search['search']['best_trial']}: "
        + ", ".join(
            f"{key} {value:.3g}" if isinstance(value, float) else f"{key} {value}"
            for key, value in document["best"].items()
        )
        + f". Search took {document['search_s'] / 60:.1f} min, one default run {default_s / 60:.1f} min.",
        "",
        "Trials (validation accuracy of the optimized .tflite; `*` best):",
        "",
        "```",
        format_trials(search["trials"]),
        "```",
        "",
        f"![trials]({document['plot']})",
        "",
        f"Seed {seed} only: the search costs {settings.max_trials + 1} runs. Test margin searched - default: "
        f"{margin:+.2f} points (one seed, so within seed noise unless large; compare the schedules section's "
        "spread).",
    ]
    document["section"] = "\n".join(lines)
    harness.write_outputs(document, os.path.join(output_dir, f"{stem}.json"), markdown_path)
    harness.finish_workdir(workdir, False, owned=owned)
    return document


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    options = harness.options_from_flags(SECTION, "benchmarks.hyperparameter_search")
    settings = SearchSettings.quick() if options.quick else SearchSettings()
    logging.info("search benchmark: %s", settings)
    document = run_benchmark(
        options.data,
        options.seeds[0],
        settings,
        output_dir=options.output_dir,
        markdown_path=options.markdown_path,
        command=options.command,
        quick=options.quick,
    )
    print(document["section"])


if __name__ == "__main__":
    app.run(main)
