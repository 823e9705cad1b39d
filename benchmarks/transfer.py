"""Does starting from a trained model beat training from scratch? Net2Net and transfer_weights on CIFAR-10 (issue 26).

Usage::

    python -m benchmarks.transfer                 # the figures of BENCHMARKS.md (3 seeds)
    python -m benchmarks.transfer --quick         # a smoke run of seconds; its figures mean nothing

Real CIFAR-10 images (``../shared/data/cifar10-15k.npz``: 12,000 training and
3,000 test images, pixels scaled to [0, 1]; nothing downloads). Per seed a
narrow CNN is trained, then a target twice as wide with one more convolution
trains for the same number of steps from scratch, from the Net2Net-grown
source, and from the source's weights copied in by ``transfer_weights``
(:mod:`benchmarks.transfer_run` says exactly how). The figure of merit: how
many steps each transferred start needs to reach the scratch model's final
test accuracy; the issue asks for at most half. The source's own training steps
are stated beside it: the transferred starts need that trained model first.
Results: ``benchmarks/results/transfer.json``, ``transfer.png`` and the
``transfer`` section of BENCHMARKS.md.
"""

import dataclasses
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from benchmarks import machine  # noqa: E402
from benchmarks import markdown  # noqa: E402
from benchmarks.core.data import load_arrays  # noqa: E402
from benchmarks.core.settings import SuiteSettings  # noqa: E402
from benchmarks.core.stats import spread  # noqa: E402
from benchmarks.transfer_run import ARMS  # noqa: E402
from benchmarks.transfer_run import run_seed  # noqa: E402
from tflite_export.atomic import atomic_write_json  # noqa: E402

__all__ = ["TransferSettings", "largest_drop", "plot", "report", "run", "summarize"]

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(_ROOT, "..", "shared", "data", "cifar10-15k.npz")
_COLORS = {"scratch": "tab:gray", "net2net": "tab:blue", "transfer": "tab:orange"}


@dataclasses.dataclass(frozen=True)
class TransferSettings(SuiteSettings):
    """The benchmark's settings; :meth:`quick` gives a smoke run's."""

    seeds: tuple = (0, 1, 2)
    narrow: tuple = (16, 32, 32, 32)  # conv1, conv2, conv3, dense of the source
    wide: tuple = (32, 64, 64, 64)  # the same layers of the target
    source_steps: int = 1200
    steps: int = 1200
    eval_every: int = 100
    batch_size: int = 64
    learning_rate: float = 1e-3
    widen_noise: float = 0.05
    max_train_examples: int | None = None
    max_test_examples: int | None = None

    @classmethod
    def quick(cls):
        return cls(
            seeds=(0,), source_steps=6, steps=6, eval_every=3, batch_size=16, max_train_examples=256,
            max_test_examples=200,
        )  # fmt: skip

    def validate(self):
        self.require_at_least_one("source_steps", "steps", "eval_every", "batch_size")
        if not self.seeds:
            raise ValueError(f"seeds must name at least one seed. Received: seeds={self.seeds}")
        return self


def run(settings, data_path=DATA):
    """Every seed's runs and the summary, as the JSON document (without command and machine)."""
    settings.validate()
    x_train, y_train, x_test, y_test = load_arrays(data_path, settings.max_train_examples)
    if settings.max_test_examples:
        x_test, y_test = x_test[: settings.max_test_examples], y_test[: settings.max_test_examples]
    data = (x_train, y_train, x_test, y_test)
    rows = []
    for seed in settings.seeds:
        rows.append(run_seed(settings, seed, data))
        logging.info("seed %d: %s", seed, {key: value for key, value in rows[-1].items() if "curve" not in key})
    return {
        "settings": settings.as_dict(),
        "data": f"{len(x_train):,} training and {len(x_test):,} test CIFAR-10 images",
        "steps_per_epoch": len(x_train) // settings.batch_size,
        "rows": rows,
        "summary": summarize(rows, settings.steps),
    }


def summarize(rows, steps):
    """Mean and spread of the final accuracies and steps, and whether every seed meets the must-hold."""
    summary = {}
    for arm in ARMS:
        summary[f"{arm}_final"] = spread([row[f"{arm}_curve"][-1][1] for row in rows])
    for arm in ("net2net", "transfer"):
        reached = [row[f"{arm}_steps_to_scratch_final"] for row in rows]
        summary[f"{arm}_steps"] = reached
        summary[f"{arm}_at_most_half"] = all(value is not None and value <= steps / 2 for value in reached)
    summary["net2net_exact_max_abs_diff"] = max(row["net2net_exact_max_abs_diff"] for row in rows)
    for arm in ("source", "scratch"):
        seconds = [100 * row[f"{arm}_seconds"] / row[f"{arm}_curve"][-1][0] for row in rows]
        summary[f"{arm}_seconds_per_100_steps"] = sum(seconds) / len(seconds)
    return summary


def _percent(value):
    return f"{100 * value:.1f}"


def _reach(value, steps):
    return "not reached" if value is None else f"{value} ({value / steps:.2f}x)"


def report(document):
    """The BENCHMARKS.md section."""
    settings, summary, steps = document["settings"], document["summary"], document["settings"]["steps"]
    epochs = steps / document["steps_per_epoch"]
    source_epochs = settings["source_steps"] / document["steps_per_epoch"]
    narrow, wide = settings["narrow"], settings["wide"]
    lines = [
        "## Knowledge transfer: Net2Net and transfer_weights against training from scratch (issue 26)",
        "",
        f"Written by `{document['command']}` on {document['machine']}. Data: {document['data']} "
        "(`../shared/data/cifar10-15k.npz`). Source: a CNN of three conv-BatchNorm-ReLU blocks with "
        f"{narrow[0]}/{narrow[1]}/{narrow[2]} filters, global pooling, Dense {narrow[3]}, trained "
        f"{settings['source_steps']} steps ({source_epochs:.1f} epochs). Target: the same twice as wide "
        f"({wide[0]}/{wide[1]}/{wide[2]}, Dense {wide[3]}) plus a 3x3 conv `conv4`, trained {steps} steps "
        f"({epochs:.1f} epochs) from each start: scratch; **net2net** (`widen` of conv1-3 and dense, noise "
        f"{settings['widen_noise']} x kernel std on the copies, then `deepen` after relu3); **transfer** "
        "(`transfer_weights` of the source into the scratch initialization: the overlap of every layer, "
        f"`conv4` left random). Adam {settings['learning_rate']}, batch {settings['batch_size']}, the same "
        f"batches in the same order for every start; test accuracy every {settings['eval_every']} steps. "
        f"Steps to reach = the first measured step at or above the scratch model's final accuracy.",
        "",
        "| seed | source acc | scratch final | net2net start | net2net final | net2net steps to reach "
        "| transfer start | transfer final | transfer steps to reach |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in document["rows"]:
        lines.append(
            f"| {row['seed']} | {_percent(row['source_curve'][-1][1])} | {_percent(row['scratch_curve'][-1][1])} "
            f"| {_percent(row['net2net_curve'][0][1])} | {_percent(row['net2net_curve'][-1][1])} "
            f"| {_reach(row['net2net_steps_to_scratch_final'], steps)} | {_percent(row['transfer_curve'][0][1])} "
            f"| {_percent(row['transfer_curve'][-1][1])} | {_reach(row['transfer_steps_to_scratch_final'], steps)} |"
        )
    finals = ", ".join(
        f"{arm} {_percent(summary[f'{arm}_final']['mean'])}% (range {_percent(summary[f'{arm}_final']['range'])})"
        for arm in ARMS
    )
    verdict = {True: "yes, every seed", False: "no"}
    halfway = {arm: [value for row in document["rows"] for step, value in row[f"{arm}_curve"] if step == steps // 2]
               for arm in ARMS}  # fmt: skip
    if all(halfway.values()):
        finals += f". Test accuracy at half the steps ({steps // 2}), per seed: " + ", ".join(
            f"{arm} {'/'.join(_percent(value) for value in halfway[arm])}" for arm in ARMS
        )
    lines += [
        "",
        f"Final test accuracy, mean over seeds: {finals}. At most half the steps ({steps // 2}) to the scratch "
        f"final: net2net {verdict[summary['net2net_at_most_half']]}, transfer "
        f"{verdict[summary['transfer_at_most_half']]}. Both transferred starts also needed the source's "
        f"{settings['source_steps']} steps (a smaller model's: {summary['source_seconds_per_100_steps']:.1f} s per 100 "
        f"steps against the target's {summary['scratch_seconds_per_100_steps']:.1f} s here, evaluations included). "
        "Before training, "
        "the noise-free widened and deepened model's logits differ from the source's by at most "
        f"{summary['net2net_exact_max_abs_diff']:.1e} on the test split. Curves: `benchmarks/results/transfer.png`.",
    ]
    if not (summary["net2net_at_most_half"] and summary["transfer_at_most_half"]):
        lines += ["", _why_not_met(document)]
    return "\n".join(lines)


def largest_drop(curve):
    """The largest fall of accuracy between two consecutive measurements of a curve.

    >>> largest_drop([[0, 0.1], [100, 0.5], [200, 0.3], [300, 0.6]])
    0.2
    """
    return max([0.0] + [round(before - after, 6) for (_, before), (_, after) in zip(curve, curve[1:])])


def _why_not_met(document):
    """What the curves say about a missed must-hold, read from the same figures."""
    rows = document["rows"]
    drops = {arm: max(largest_drop(row[f"{arm}_curve"][1:]) for row in rows) for arm in ARMS}
    best = {
        arm: ", ".join(f"seed {row['seed']} {_percent(max(v for _, v in row[f'{arm}_curve']))}" for row in rows)
        for arm in ("net2net", "transfer")
    }
    return (
        "Why the must-hold is missed here: after the first measurement, test accuracy swings between consecutive "
        "measurements by up to "
        + ", ".join(f"{_percent(drops[arm])} points ({arm})" for arm in ARMS)
        + ", so one final checkpoint and the first step at or above it are noisy figures; the best measured "
        f"accuracy of net2net was {best['net2net']}, of transfer {best['transfer']}. The sources reached only "
        "the accuracies of the first column, so net2net starts below the scratch final and must still learn, "
        "and transfer starts near chance (its `conv4` and new channels are random). The cause of the swings was "
        "not isolated; candidates are a fresh Adam at the full training rate on already trained weights, and "
        "BatchNorm's moving statistics a few epochs into training."
    )


def plot(document, path):
    """Test accuracy against steps, one panel per seed, the scratch final as a dashed line."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = document["rows"]
    figure = Figure(figsize=(4.2 * len(rows), 3.8), dpi=100)
    FigureCanvasAgg(figure)
    for index, row in enumerate(rows):
        axes = figure.add_subplot(1, len(rows), index + 1)
        for arm in ARMS:
            steps, values = zip(*row[f"{arm}_curve"])
            axes.plot(steps, [100 * value for value in values], marker=".", label=arm, color=_COLORS[arm])
        axes.axhline(100 * row["scratch_curve"][-1][1], color="tab:gray", linestyle="--", linewidth=0.8)
        axes.axvline(document["settings"]["steps"] / 2, color="black", linestyle=":", linewidth=0.8)
        axes.set_title(f"seed {row['seed']}")
        axes.set_xlabel("training steps of the target")
        axes.set_ylabel("test accuracy (%)")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8, loc="lower right")
    figure.suptitle("CIFAR-10: scratch vs Net2Net vs transfer_weights (dashed: scratch final; dotted: half the steps)")
    figure.tight_layout()
    figure.savefig(path, format="png")
    return path


def main(argv):
    del argv
    settings = TransferSettings.quick() if flags.FLAGS.quick else TransferSettings.full()
    if flags.FLAGS.seeds:
        settings = dataclasses.replace(settings, seeds=tuple(int(seed) for seed in flags.FLAGS.seeds))
    start_machine = machine.describe_machine()
    document = run(settings)
    document["command"] = (
        "python -m benchmarks.transfer"
        + (" --quick" if flags.FLAGS.quick else "")
        + (f" --seeds={','.join(flags.FLAGS.seeds)}" if flags.FLAGS.seeds else "")
    )
    document["machine"] = machine.one_line(start_machine, load_at_end=machine.load_average())
    atomic_write_json(flags.FLAGS.output, document)
    plot(document, os.path.splitext(flags.FLAGS.output)[0] + ".png")
    body = report(document)
    print(body)
    if flags.FLAGS.markdown:
        markdown.write_section(flags.FLAGS.markdown, "transfer", body)


if __name__ == "__main__":
    flags.DEFINE_bool("quick", False, "A smoke run of seconds; its figures mean nothing.")
    flags.DEFINE_list("seeds", None, "Seeds to run (default 0,1,2).")
    flags.DEFINE_string("output", os.path.join(_ROOT, "benchmarks", "results", "transfer.json"), "JSON results file.")
    flags.DEFINE_string("markdown", os.path.join(_ROOT, "BENCHMARKS.md"), "Markdown file whose section is rewritten.")
    app.run(main)
