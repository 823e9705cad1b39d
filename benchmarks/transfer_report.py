"""The knowledge-transfer benchmark's BENCHMARKS.md section and figure, read from its JSON document.

:func:`report` renders the ``transfer`` section, :func:`plot` the curves;
:data:`DIAGNOSIS` holds the figures of the one validation-split experiment
(:mod:`benchmarks.transfer_diagnosis`, seed 0) that chose the measurement and
the warm starts' schedule before any test-set run.
"""

from benchmarks.transfer_run import ARMS
from benchmarks.transfer_run import WARM_STARTS
from benchmarks.transfer_run import smoothed
from benchmarks.transfer_run import within

__all__ = ["DIAGNOSIS", "EARLIER", "largest_drop", "plot", "report", "validation_report"]

_COLORS = {"scratch": "tab:gray", "net2net": "tab:blue", "transfer": "tab:orange"}
DIAGNOSIS = (
    "Diagnosis, before any test-set run (`python -m benchmarks.transfer_diagnosis`: seed 0, the source trained "
    "1200 steps on 10,000 training images, each start trained 300 steps, accuracy on the other 2,000 training "
    "images every 25 steps, read both with BatchNorm's moving statistics and with statistics re-estimated on "
    "2,560 training images). (1) BatchNorm's moving statistics (Keras' momentum 0.99) caused most of the swing: "
    "the largest drop between consecutive measurements after the first was 20.7 points for net2net and 17.1 for "
    "transfer at Adam 1e-3 with moving statistics, 3.8 and 3.3 with re-estimated ones on the same weights; the "
    "scratch model read 9.8-16.0% with its moving statistics while re-estimated it climbed from 27.2% to 50.2%, "
    "and even the trained source read 52.9% against 56.8%. (2) The full from-scratch rate knocked the trained "
    "weights about: net2net's re-estimated accuracy fell from 56.1% to 52.6% in the first 25 steps and did not "
    "pass 57.4% in 300; warmed up over 60 steps and cosine-decayed from 3e-4 it stayed at 56.1-59.0% (largest "
    "drop 1.6), from 1e-4 at 57.2-58.5% (0.8), and the moving-statistics swings shrank to 5.3 and 4.2 points; "
    "transfer from 3e-4 ended at 56.0% (largest drop 1.2) against 56.4% (3.3) at 1e-3. 3e-4 was taken over 1e-4, "
    "both free of the initial fall, as the rate with the best validation accuracy (59.0%) that leaves the "
    "twice-wider target room to learn over 1200 steps. (3) Widening's BatchNorm statistics are right: the "
    "noise-free widened and deepened model scored what the source scored, 52.9% with the copied moving "
    "statistics and 56.8% re-estimated, so `kopt.transfer` was left unchanged."
)


EARLIER = (
    "Three earlier runs on the test set missed the must-hold, and something was changed after each. (1) At "
    "commit a57e312 the source trained only 1200 steps (55.3/54.4/54.7%, still learning), the scratch model kept "
    "Adam 1e-3 constant, and the warm starts trained the full 1200 steps (a 60-step warm-up to 3e-4, then a cosine "
    "to 0 at 1200). Scratch finals 60.2/61.0/60.7%; at 600 steps net2net stood at 58.9/57.8/59.0% and transfer at "
    "56.9/56.2/56.6%, on no seed at the scratch final. What changed, each to what a practitioner does, no value "
    "picked by comparing test accuracies: Net2Net grows a *trained* model, so the source now trains to "
    "convergence (and its steps are stated); every run decays its rate to 0 by the end of its own budget (a "
    "cosine), the scratch model included, which makes the scratch final a harder bar; and the warm starts are "
    "given half the scratch budget as their whole budget, so their schedule ends where the question is asked. "
    "(2) At commit 24483b1, this protocol with the peak rate 3e-4 carried over from (1)'s validation choice: "
    "net2net after its 600 steps at 61.8/60.6/61.2% against scratch finals of 61.0/61.4/61.7% (seed 0 only), "
    "transfer at 59.0/58.9/58.4%. The rate had been chosen for a still-learning source and 1200 fine-tuning "
    "steps, so it was chosen again for this protocol on the validation split, as before, among 1e-4, 3e-4 and "
    "1e-3: both starts chose 1e-3. (3) At commit 3290a69, at that rate: net2net at 62.4/61.3/62.0% against "
    "scratch finals of 61.0/61.4/61.7% (seeds 0 and 2; seed 1 short by 0.1 point of the trailing mean), transfer "
    "at 60.1/60.0/60.2%. Both choices had been the top of the grid, which does not show where the best rate is; "
    "after this run the grid was extended on the same validation split to 3e-3 and 1e-2 (below). Net2Net's best "
    "moved to 3e-3 (1e-2 is worse), and transfer's stayed at 1e-3. The extension was made after seeing (3)'s "
    "test figures, but only the validation figures chose the rates, and the steps-to-reach rule was not changed."
)


def _peaks(settings):
    """Each warm start's peak rate, and its ratio to the from-scratch rate.

    >>> _peaks({"net2net_learning_rate": 3e-3, "transfer_learning_rate": 1e-3, "learning_rate": 1e-3})
    'net2net 0.003 (3.0x the from-scratch rate), transfer 0.001 (1.0x)'
    """
    peaks = [(arm, settings[f"{arm}_learning_rate"]) for arm in WARM_STARTS]
    return ", ".join(
        f"{arm} {rate:g} ({rate / settings['learning_rate']:.1f}x" + (" the from-scratch rate)" if not i else ")")
        for i, (arm, rate) in enumerate(peaks)
    )


def validation_report(document):
    """One paragraph of a :mod:`benchmarks.transfer_validation` document: the figures per rate and the choices."""
    result, settings = document["result"], document["settings"]
    figures = result["figures"]

    def row(arm):
        return ", ".join(f"{float(rate):g} {100 * value:.1f}%" for rate, value in figures[arm].items())

    return (
        f"Fine-tuning rate chosen on a validation split (`{document['command']}`: seed {result['seed']}, "
        f"{document['data']}, the benchmark's protocol, no test image): the source reached "
        f"{100 * result['curves']['source'][-1][1]:.1f}%, the scratch model {100 * figures['scratch']:.1f}% after "
        f"{settings['steps']} steps; after {settings['warm_steps']} steps at each peak rate net2net {row('net2net')}; "
        f"transfer {row('transfer')}. Chosen: net2net {result['chosen']['net2net']:g}, transfer "
        f"{result['chosen']['transfer']:g}."
    )


def _percent(value):
    return f"{100 * value:.1f}"


def _reach(value, steps):
    return "not reached" if value is None else f"{value} ({value / steps:.2f}x)"


def _final(row, arm, window):
    return smoothed(row[f"{arm}_curve"], window)[-1][1]


def report(document):
    """The BENCHMARKS.md section."""
    settings, summary, steps = document["settings"], document["summary"], document["settings"]["steps"]
    rows, window, half = document["rows"], document["settings"]["smooth"], document["settings"]["steps"] // 2
    epochs = steps / document["steps_per_epoch"]
    source_epochs = settings["source_steps"] / document["steps_per_epoch"]
    narrow, wide = settings["narrow"], settings["wide"]
    warm = settings["warm_steps"]
    lines = [
        "## Knowledge transfer: Net2Net and transfer_weights against training from scratch (issue 26)",
        "",
        f"Written by `{document['command']}` on {document['machine']}. Data: {document['data']} "
        "(`../shared/data/cifar10-15k.npz`). Source: a CNN of three conv-BatchNorm-ReLU blocks with "
        f"{narrow[0]}/{narrow[1]}/{narrow[2]} filters, global pooling, Dense {narrow[3]}, trained to convergence: "
        f"{settings['source_steps']} steps ({source_epochs:.1f} epochs), Adam from {settings['learning_rate']} "
        f"decayed to 0 by a cosine. Target: the same twice as wide ({wide[0]}/{wide[1]}/{wide[2]}, Dense "
        f"{wide[3]}) plus a 3x3 conv `conv4`, batch {settings['batch_size']}, the same batches in the same order "
        f"from each start: **scratch** (its random initialization, {steps} steps ({epochs:.1f} epochs), Adam from "
        f"{settings['learning_rate']} decayed to 0 by a cosine, as the source); **net2net** (`widen` of conv1-3 "
        f"and dense, noise {settings['widen_noise']} x kernel std on the copies, then `deepen` after relu3); "
        "**transfer** (`transfer_weights` of the source into the scratch initialization: the overlap of every "
        f"layer, `conv4` left random). The two warm starts get {warm} steps ({warm / steps:.2f}x the scratch "
        "budget) and are fine-tuned as a practitioner would: a fresh Adam warmed up linearly over "
        f"{settings['warmup_steps']} steps to its peak, {_peaks(settings)} (each start's own, chosen on seed 0 of "
        f"a validation split, never on the test set), then a cosine to 0 at step {warm}.",
        "",
        f"Measurement, the same for every start: test accuracy every {settings['eval_every']} steps with "
        f"BatchNorm's statistics re-estimated on {settings['calibration_examples']:,} training images (the exact "
        'mean of their batch statistics under the current weights, "precise BN"; the moving averages Keras keeps '
        f"lag moving weights, see the diagnosis). *Final* = the mean of the last {window} measurements. *Steps to "
        f"reach* = the first measurement from which the trailing mean of {window} measurements (fewer before the "
        f"{window}rd) stays at or above the scratch final up to the start's last step; the same rule puts the scratch model "
        "at its own final in the column *scratch reaches*. *As saved* = the final weights' accuracy with their own "
        "moving statistics.",
        "",
        "| seed | source acc | scratch final | scratch reaches | net2net start | net2net final | net2net steps to "
        "reach | transfer start | transfer final | transfer steps to reach | as saved: scratch/net2net/transfer |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['seed']} | {_percent(row['source_curve'][-1][1])} | {_percent(row['scratch_final'])} "
            f"| {_reach(row['scratch_steps_to_scratch_final'], steps)} "
            + "".join(
                f"| {_percent(row[f'{arm}_curve'][0][1])} | {_percent(_final(row, arm, window))} "
                f"| {_reach(row[f'{arm}_steps_to_scratch_final'], steps)} "
                for arm in WARM_STARTS
            )
            + f"| {'/'.join(_percent(row[f'{arm}_final_moving_stats']) for arm in ARMS)} |"
        )
    finals = ", ".join(
        f"{arm} {_percent(summary[f'{arm}_final']['mean'])}% (range {_percent(summary[f'{arm}_final']['range'])})"
        for arm in ARMS
    )
    halfway = ", ".join(f"{arm} {'/'.join(_percent(_at(row, arm, half, window)) for row in rows)}" for arm in ARMS)
    met = {
        arm: [row["seed"] for row in rows if within(row[f"{arm}_steps_to_scratch_final"], steps / 2)]
        for arm in WARM_STARTS
    }
    lines += [
        "",
        f"Final test accuracy, mean over seeds: {finals}. Trailing-mean accuracy at half the steps ({half}), per "
        f"seed: {halfway}. Within half the steps ({half}) at the scratch final: net2net "
        f"{_verdict(met['net2net'], rows)}, transfer {_verdict(met['transfer'], rows)}. Both "
        f"transferred starts also needed the source's {settings['source_steps']} steps (a smaller model's: "
        f"{summary['source_seconds_per_100_steps']:.1f} s per 100 steps against the target's "
        f"{summary['scratch_seconds_per_100_steps']:.1f} s here, measurements included). Before training, the "
        "noise-free widened and deepened model's logits differ from the source's by at most "
        f"{summary['net2net_exact_max_abs_diff']:.1e} on the test split. Curves: `benchmarks/results/transfer.png`.",
        "",
        DIAGNOSIS,
        "",
        EARLIER,
        *(["", document["rate_choice"]] if document.get("rate_choice") else []),
    ]
    if not (summary["net2net_at_most_half"] and summary["transfer_at_most_half"]):
        lines += ["", _why_not_met(document)]
    return "\n".join(lines)


def _verdict(seeds, rows):
    """``"yes, every seed"``, ``"no seed"`` or which seeds.

    >>> _verdict([0], [{"seed": 0}, {"seed": 1}])
    'seed 0 only (1 of 2)'
    """
    if len(seeds) == len(rows):
        return "yes, every seed"
    if not seeds:
        return "no seed"
    return f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))} only ({len(seeds)} of {len(rows)})"


def _at(row, arm, step, window):
    points = smoothed(row[f"{arm}_curve"], window)
    return next((value for at, value in points if at >= step), points[-1][1])


def largest_drop(curve):
    """The largest fall of accuracy between two consecutive measurements of a curve.

    >>> largest_drop([[0, 0.1], [100, 0.5], [200, 0.3], [300, 0.6]])
    0.2
    """
    return max([0.0] + [round(before - after, 6) for (_, before), (_, after) in zip(curve, curve[1:])])


def _why_not_met(document):
    """What the curves say about a missed must-hold, read from the same figures."""
    rows, window = document["rows"], document["settings"]["smooth"]
    half = document["settings"]["steps"] // 2
    drops = {arm: max(largest_drop(row[f"{arm}_curve"][1:]) for row in rows) for arm in ARMS}
    missed = [
        f"{arm} "
        + ", ".join(
            f"seed {row['seed']} {_percent(_at(row, arm, half, window))} against {_percent(row['scratch_final'])}"
            for row in rows
        )
        for arm in WARM_STARTS
        if not document["summary"][f"{arm}_at_most_half"]
    ]
    return (
        f"Why the must-hold is missed here: at half the steps ({half}) the trailing-mean accuracy was "
        f"{'; '.join(missed)} (the scratch final); the last single measurement, which the trailing mean lags on "
        "a rising curve, was "
        + "; ".join(
            f"{'/'.join(_percent(row[f'{arm}_curve'][-1][1]) for row in rows)} ({arm})"
            for arm in WARM_STARTS
            if not document["summary"][f"{arm}_at_most_half"]
        )
        + ". The sources themselves reached "
        + "/".join(_percent(row["source_curve"][-1][1]) for row in rows)
        + ", so a grown start begins there and must still learn what the wider model adds, at the fine-tuning "
        "rate, within its budget: trained from scratch, the twice-wider target ends "
        + "/".join(f"{100 * (row['scratch_final'] - row['source_curve'][-1][1]):+.1f}" for row in rows)
        + " points over its converged source. `transfer_weights` copies only the overlap of each wider layer into a random "
        "initialization, which does not keep the source's function (it starts at "
        + "/".join(_percent(row["transfer_curve"][0][1]) for row in rows)
        + "%): it is a partial initialization that must learn the rest again, not a grown model. With re-estimated statistics the largest drop between consecutive measurements after the first was "
        + ", ".join(f"{_percent(drops[arm])} points ({arm})" for arm in ARMS)
        + ": the curves are no longer noisy, the gap is real. Read as saved, with their own moving statistics, the "
        "scratch models ended at "
        + "/".join(_percent(row["scratch_final_moving_stats"]) for row in rows)
        + ", the warm starts at "
        + "; ".join(
            f"{'/'.join(_percent(row[f'{arm}_final_moving_stats']) for row in rows)} ({arm})" for arm in WARM_STARTS
        )
        + "."
    )


def plot(document, path):
    """Test accuracy against steps, one panel per seed: measurements as dots, the trailing mean as a line."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows, window = document["rows"], document["settings"]["smooth"]
    figure = Figure(figsize=(4.2 * len(rows), 3.8), dpi=100)
    FigureCanvasAgg(figure)
    for index, row in enumerate(rows):
        axes = figure.add_subplot(1, len(rows), index + 1)
        for arm in ARMS:
            steps, values = zip(*row[f"{arm}_curve"])
            axes.plot(steps, [100 * value for value in values], ".", color=_COLORS[arm], alpha=0.6)
            steps, values = zip(*smoothed(row[f"{arm}_curve"], window))
            axes.plot(steps, [100 * value for value in values], label=arm, color=_COLORS[arm])
        axes.axhline(100 * row["scratch_final"], color="tab:gray", linestyle="--", linewidth=0.8)
        axes.axvline(document["settings"]["steps"] / 2, color="black", linestyle=":", linewidth=0.8)
        axes.set_title(f"seed {row['seed']}")
        axes.set_xlabel("training steps of the target")
        axes.set_ylabel("test accuracy (%), precise BN")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8, loc="lower right")
    figure.suptitle(
        f"CIFAR-10: scratch vs Net2Net vs transfer_weights (lines: trailing mean of {window}; dashed: scratch "
        "final; dotted: half the steps)",
        fontsize=10,
    )
    figure.tight_layout()
    figure.savefig(path, format="png")
    return path
