"""Binary and ternary weights against int8 and 4-bit QAT on real MNIST and CIFAR-10, with and without distillation.

Usage::

    python -m benchmarks.low_bit                  # MNIST, the figures of BENCHMARKS.md (2 seeds)
    python -m benchmarks.low_bit --dataset=cifar10  # CIFAR-10: section low_bit_cifar10
    python -m benchmarks.low_bit --quick          # a smoke run of seconds; its figures mean nothing

Real MNIST digits (``../shared/data/mnist-22k.npz``: 22,699 training and the
10,000 official test images, pixels scaled to [0, 1]; nothing downloads). The
model is the quantization benchmark's conv-BN CNN (225,050 parameters). Per
seed it trains in float, then each scheme fine-tunes a quantization-aware copy
of it on the labels, and another copy distilled from a float reference trained as long
(:mod:`benchmarks.low_bit_run` says exactly how). Binary and ternary keep their
first and last layer (the first convolution, 144 weights, and the classifier,
640) at 8 bits, kopt's default; 4-bit keeps none at 8 bits. Every file is scored
on the whole test split in LiteRT. Results: ``benchmarks/results/low_bit.json``,
``low_bit.png`` and the ``low_bit`` section of BENCHMARKS.md (issue 26).

``--dataset=cifar10`` runs the same on real CIFAR-10 (``../shared/data/cifar10-15k.npz``:
12,000 training and 3,000 test colour images): the same layers on 32x32x3 inputs
(286,778 parameters), trained longer (:meth:`LowBitSettings.for_cifar10`); results
``low_bit_cifar10.{json,png}`` and the ``low_bit_cifar10`` section.
"""

import dataclasses
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from benchmarks import machine  # noqa: E402
from benchmarks import standalone  # noqa: E402
from benchmarks.core.data import load_arrays  # noqa: E402
from benchmarks.core.settings import SuiteSettings  # noqa: E402
from benchmarks.core.stats import spread  # noqa: E402
from benchmarks.low_bit_run import SCHEMES  # noqa: E402
from benchmarks.low_bit_run import run_seed  # noqa: E402

__all__ = ["LowBitSettings", "plot", "report", "run", "summarize"]

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(_ROOT, "..", "shared", "data", "mnist-22k.npz")
# dataset -> (archive, name, the model's description)
DATASETS = {
    "mnist": (DATA, "MNIST", "the conv-BN CNN of the quantization benchmark (225,050 parameters)"),
    "cifar10": (
        os.path.join(_ROOT, "..", "shared", "data", "cifar10-15k.npz"),
        "CIFAR-10",
        "the conv-BN CNN of the quantization benchmark on 32x32x3 colour images (286,778 parameters)",
    ),
}
_COLORS = {
    "float": "gray",
    "float_continued": "black",
    "8bit": "tab:blue",
    "4bit": "tab:green",
    "ternary": "tab:orange",
    "binary": "tab:red",
}


@dataclasses.dataclass(frozen=True)
class LowBitSettings(SuiteSettings):
    """The benchmark's settings; :meth:`quick` gives a smoke run's."""

    seeds: tuple = (0, 1)
    dataset: str = "mnist"
    model: str = "conv_bn_cnn"
    schemes: tuple = tuple(SCHEMES)
    float_epochs: int = 3
    finetune_epochs: int = 2
    batch_size: int = 64
    learning_rate: float = 1e-3
    # int8 and 4-bit QAT only adapt to rounding: a tenth of the float rate, as the
    # quantization benchmark; binary and ternary signs must flip: the float rate.
    qat_learning_rate: float = 1e-4
    low_bit_learning_rate: float = 1e-3
    # Every stage's rate decays to 0 by a cosine (benchmarks.low_bit_run._schedule): a recorded setting, so a
    # document of the constant-rate runs (before it) renders as what it was.
    cosine: bool = True
    distillation_alpha: float = 0.1
    temperature: float = 4.0
    max_train_examples: int | None = None
    max_test_examples: int | None = None

    @classmethod
    def quick(cls):
        return cls(
            seeds=(0,), schemes=("binary",), float_epochs=1, finetune_epochs=1, batch_size=32,
            max_train_examples=128, max_test_examples=100,
        )  # fmt: skip

    @classmethod
    def for_cifar10(cls):
        """CIFAR-10's settings: 10 float epochs (3 leave the CNN far from trained on colour images), then 3."""
        return cls(dataset="cifar10", float_epochs=10, finetune_epochs=3)

    def validate(self):
        self.require_at_least_one("float_epochs", "finetune_epochs", "batch_size")
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {', '.join(DATASETS)}. Received: dataset={self.dataset!r}")
        if not self.seeds:
            raise ValueError(f"seeds must name at least one seed. Received: seeds={self.seeds}")
        unknown = [scheme for scheme in self.schemes if scheme not in SCHEMES]
        if unknown or not self.schemes:
            raise ValueError(f"schemes must be among {', '.join(SCHEMES)}. Received: schemes={self.schemes}")
        return self


def run(settings, data_path=None):
    """Every seed's rows and the summary, as the JSON document (without command and machine).

    ``data_path`` defaults to the archive of ``settings.dataset``.
    """
    settings.validate()
    data_path = data_path or DATASETS[settings.dataset][0]
    x_train, y_train, x_test, y_test = load_arrays(data_path, settings.max_train_examples)
    if settings.max_test_examples:
        x_test, y_test = x_test[: settings.max_test_examples], y_test[: settings.max_test_examples]
    rows = []
    with tempfile.TemporaryDirectory(prefix="kopt-low-bit-") as workdir:
        for seed in settings.seeds:
            seed_rows = run_seed(settings, seed, (x_train, y_train, x_test, y_test), workdir)
            for row in seed_rows:
                logging.info("%s", row)
            rows += seed_rows
    return {
        "settings": settings.as_dict(),
        "data": f"{len(x_train):,} training and {len(x_test):,} test {DATASETS[settings.dataset][1]} images",
        "rows": rows,
        "summary": summarize(rows),
    }


def _variants(rows):
    """``(scheme, distilled)`` pairs in the order the rows first give them."""
    return list(dict.fromkeys((row["scheme"], row["distilled"]) for row in rows))


def summarize(rows):
    """Per variant: accuracy over seeds, sizes, and the issue's checks for binary and ternary."""
    floats = {row["seed"]: row for row in rows if row["scheme"] == "float_continued"}
    summary = {}
    for scheme, distilled in _variants(rows):
        chosen = [row for row in rows if (row["scheme"], row["distilled"]) == (scheme, distilled)]
        gaps = [floats[row["seed"]]["tflite_accuracy"] - row["tflite_accuracy"] for row in chosen]
        key = f"{scheme}{'_distilled' if distilled else ''}"
        summary[key] = {
            "tflite_accuracy": spread([row["tflite_accuracy"] for row in chosen]),
            "points_below_float": spread([100 * gap for gap in gaps]),
            "file_bytes": chosen[0]["file_bytes"],
            "packed_bytes": chosen[0]["packed_bytes"],
            "packed_share_of_float32": chosen[0]["packed_bytes"] / chosen[0]["float32_weight_bytes"],
            "within_2_points_every_seed": all(gap <= 0.02 for gap in gaps),
        }
        if scheme in ("binary", "ternary"):
            # The low-bit kernels are every weighted op but the first and the last.
            low_bit = [count for row in chosen for count in row["max_values_per_channel"][1:-1]]
            summary[key]["max_int8_values_per_channel"] = max(low_bit)
    return summary


def _percent(value):
    return f"{100 * value:.2f}"


def _label(scheme, distilled):
    names = {"float": "float (start)", "float_continued": "float reference (teacher)"}
    name = names.get(scheme) or SCHEMES[scheme][0]
    return f"{name} + distillation" if distilled else name


def report(document):
    """The BENCHMARKS.md section."""
    settings, summary, rows = document["settings"], document["summary"], document["rows"]
    seeds = settings["seeds"]
    dataset = settings.get("dataset", "mnist")
    archive, name, model = DATASETS[dataset]
    lines = [
        "## Binary and ternary weights against int8 and 4-bit, with and without distillation"
        + (f" on {name}" if dataset != "mnist" else "")
        + " (issue 26)",
        "",
        f"Written by `{document['command']}` on {document['machine']}. Data: {document['data']} "
        f"(`../shared/data/{os.path.basename(archive)}`). Model: {model}, trained in float for {settings['float_epochs']} epochs (Adam {settings['learning_rate']}"
        + (", every stage's rate decayed to 0 by a cosine" if settings.get("cosine") else "")
        + ", "
        f"batch {settings['batch_size']}: the start); each scheme then fine-tunes a `quantize_model` copy of it "
        f"for {settings['finetune_epochs']} epochs, on the labels alone and, in a second copy, inside "
        "`kopt.distillation.Distiller` (alpha "
        f"{settings['distillation_alpha']}, temperature {settings['temperature']}). The float reference, "
        f"which is also the teacher, is the start trained the same {settings['finetune_epochs']} more epochs "
        "in float, so that the extra epochs do not count for quantization; points below float are against "
        f"it, seed by seed. Rates: int8 and 4-bit {settings['qat_learning_rate']}, binary, ternary and the "
        f"float reference {settings['low_bit_learning_rate']}. Binary and ternary keep the first convolution "
        "and the classifier at 8 bits (kopt's default, as is usual); 4-bit quantizes every kernel. Accuracy: "
        "each int8 TFLite file (float32 for the float models) on the whole test split in LiteRT; file bytes "
        "as written; packed bytes: `kopt.quantization.packed_size`, the weights at their own bit width (1, 2, 4 "
        "or 8 bits; 32 for biases and float weights) plus a float32 scale per channel, against the same "
        "weights in float32 (BatchNorm folded). Seeds: " + ", ".join(str(seed) for seed in seeds) + ".",
        "",
        "| model | TFLite accuracy % (per seed) | mean | points below float | file KiB | packed KiB "
        "| packed / float32 | most int8 values per channel |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for scheme, distilled in _variants(rows):
        key = f"{scheme}{'_distilled' if distilled else ''}"
        entry = summary[key]
        per_seed = ", ".join(
            _percent(row["tflite_accuracy"]) for row in rows if (row["scheme"], row["distilled"]) == (scheme, distilled)
        )
        gap = "-" if scheme == "float_continued" else f"{entry['points_below_float']['mean']:.2f}"
        values = entry.get("max_int8_values_per_channel", "-")
        lines.append(
            f"| {_label(scheme, distilled)} | {per_seed} | {_percent(entry['tflite_accuracy']['mean'])} | {gap} "
            f"| {entry['file_bytes'] / 1024:.1f} | {entry['packed_bytes'] / 1024:.1f} "
            f"| 1/{1 / entry['packed_share_of_float32']:.1f} | {values} |"
        )
    binary = summary.get("binary")
    if binary is not None:
        verdict = "yes, every seed" if binary["within_2_points_every_seed"] else "no"
        lines += [
            "",
            f"Binary (first and last layer 8-bit) within 2 points of the float reference: {verdict}; its packed "
            "weights are "
            f"1/{1 / binary['packed_share_of_float32']:.1f} of float32 (the issue asks for at most 1/25). Its int8 "
            f"file holds at most {binary['max_int8_values_per_channel']} values per output channel in every "
            "binary kernel (ternary: "
            f"{summary.get('ternary', {}).get('max_int8_values_per_channel', '-')}). "
            "4-bit files store their kernels as packed int4, which the table does not read back. "
            + (
                "CIFAR-10: section `low_bit_cifar10`. "
                if dataset == "mnist"
                else "(The 1/25 and 2-point targets are the issue's for MNIST.) "
            )
            + f"Plot: `benchmarks/results/{_stem(dataset)}.png`.",
        ]
    return "\n".join(lines)


def plot(document, path):
    """TFLite accuracy against packed size, every seed a point; hollow markers: distilled."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9.5, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    for scheme, distilled in _variants(document["rows"]):
        chosen = [row for row in document["rows"] if (row["scheme"], row["distilled"]) == (scheme, distilled)]
        axes.scatter(
            [row["packed_bytes"] / 1024 for row in chosen],
            [100 * row["tflite_accuracy"] for row in chosen],
            marker="o" if distilled else "s",
            facecolors="none" if distilled else _COLORS[scheme],
            edgecolors=_COLORS[scheme],
            label=_label(scheme, distilled),
        )
    axes.set_xscale("log")
    axes.set_xlabel("packed weights (KiB, log scale)")
    axes.set_ylabel("TFLite test accuracy (%)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))  # outside: points fill every corner
    name = DATASETS[document["settings"].get("dataset", "mnist")][1]
    figure.suptitle(f"{name} conv-BN CNN: accuracy against packed size (each point a seed)")
    figure.tight_layout()
    figure.savefig(path, format="png")
    return path


def _stem(dataset):
    return "low_bit" if dataset == "mnist" else f"low_bit_{dataset}"


def main(argv):
    del argv
    dataset = flags.FLAGS.dataset
    if flags.FLAGS.quick:
        settings = dataclasses.replace(LowBitSettings.quick(), dataset=dataset)
    else:
        settings = LowBitSettings.for_cifar10() if dataset == "cifar10" else LowBitSettings.full()
    if flags.FLAGS.seeds:
        settings = dataclasses.replace(settings, seeds=tuple(int(seed) for seed in flags.FLAGS.seeds))
    start_machine = machine.describe_machine()
    document = standalone.stamp(run(settings), "benchmarks.low_bit", start_machine)
    standalone.publish(
        document,
        flags.FLAGS.output or os.path.join(_ROOT, "benchmarks", "results", f"{_stem(dataset)}.json"),
        report=report,
        section=_stem(dataset),
        markdown_path=flags.FLAGS.markdown,
        plot=plot,
    )


if __name__ == "__main__":
    flags.DEFINE_bool("quick", False, "A smoke run of seconds; its figures mean nothing.")
    flags.DEFINE_list("seeds", None, "Seeds to run (default 0,1).")
    flags.DEFINE_enum("dataset", "mnist", list(DATASETS), "Real data to run on.")
    flags.DEFINE_string("output", None, "JSON results file (default benchmarks/results/low_bit[_cifar10].json).")
    flags.DEFINE_string("markdown", os.path.join(_ROOT, "BENCHMARKS.md"), "Markdown file whose section is rewritten.")
    app.run(main)
