"""Distillation benchmark: a distilled student against the same student trained from scratch.

For every seed it trains the teacher once, caches its logits, then trains the
student twice from the same initial weights with the same optimizer, batch
size, epochs and example order: on the labels alone and with
:class:`kopt.distillation.Distiller` (see ``distillation_settings.py``). It
reports every seed's test and validation accuracy, the mean and spread (std and
max-min), and judges the issue's targets: the student has at most a tenth of
the teacher's parameters, and the mean margin exceeds the seed-to-seed spread.

Writes ``<output_dir>/distillation.json`` and ``distillation.png`` and rewrites
the section between ``<!-- distillation:begin -->`` and
``<!-- distillation:end -->`` of BENCHMARKS.md, printing that section. From the
repository root::

    python -m benchmarks.distillation                     # 3 seeds, the benchmark's figures
    python -m benchmarks.distillation --quick --seeds=0   # smoke run, a minute or two

A ``--quick`` run writes ``distillation_quick.{json,png,md}`` in ``--output_dir``
and leaves BENCHMARKS.md alone.
"""

import datetime
import json
import os
import sys
import time

# Before TensorFlow is imported: C++ info logs bury the benchmark's own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from benchmarks import distillation_report  # noqa: E402
from benchmarks import machine  # noqa: E402
from benchmarks import markdown  # noqa: E402
from benchmarks.distillation_settings import DistillationSettings  # noqa: E402

SECTION = "distillation"
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = os.path.join(REPO_ROOT, "..", "shared", "data", "mnist-22k.npz")

_SEEDS = flags.DEFINE_string("seeds", "0,1,2", "Comma-separated seeds; each trains a teacher and two students.")
_QUICK = flags.DEFINE_bool("quick", False, "Smoke run: little data, few epochs, one seed at most 2.")
_DATA = flags.DEFINE_string("data", DEFAULT_DATA, "The MNIST .npz file.")
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", os.path.join(REPO_ROOT, "benchmarks", "results"), "Where the JSON and PNG go."
)
_MARKDOWN = flags.DEFINE_string(
    "markdown", None, "Markdown file whose distillation section is rewritten; default BENCHMARKS.md (full runs)."
)


def parse_seeds(text, quick):
    """The seeds from ``--seeds``; a quick run keeps the first two."""
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise app.UsageError(f"--seeds must be integers separated by commas. Received: --seeds={text}") from None
    if not seeds:
        raise app.UsageError(f"--seeds names no seed. Received: --seeds={text}")
    return seeds[:2] if quick else seeds


def run_benchmark(data, seeds, settings, *, output_dir, markdown_path, command, quick=False):
    """Runs every seed, writes JSON, PNG and the markdown section; returns the JSON document."""
    from benchmarks import distillation_run

    started = time.time()
    machine_info = machine.describe_machine()
    runs = {}
    for seed in seeds:
        try:
            runs[str(seed)] = distillation_run.run(data, seed, settings, log=logging.info)
        except Exception as err:  # noqa: BLE001 - a failing seed is reported and the run goes on.
            logging.exception("seed %d failed", seed)
            runs[str(seed)] = {"error": f"{type(err).__name__}: {str(err)[:200]}"}
    ran = [run for run in runs.values() if "error" not in run]
    params = {"teacher": ran[0]["teacher"]["params"], "student": ran[0]["scratch"]["params"]} if ran else None
    summary = distillation_report.summarize(runs)
    verdicts = distillation_report.judge(summary, params)
    stem = f"{SECTION}_quick" if quick else SECTION
    os.makedirs(output_dir, exist_ok=True)
    rows = distillation_report.seed_rows(runs)
    plot_path = distillation_report.plot(rows, os.path.join(output_dir, f"{stem}.png"))
    document = {
        "benchmark": SECTION,
        "command": command,
        "quick": quick,
        "started_utc": datetime.datetime.fromtimestamp(started, datetime.UTC).strftime("%Y-%m-%d %H:%M"),
        "wall_time_s": time.time() - started,
        "data": os.path.relpath(data, REPO_ROOT) if os.path.isabs(data) else data,
        "seeds": list(seeds),
        "machine": machine_info,
        "machine_line": machine.one_line(machine_info, load_at_end=machine.load_average()),
        "settings": settings.as_dict(),
        "settings_description": settings.describe(),
        "params": params,
        "plot": os.path.relpath(plot_path, os.path.dirname(os.path.abspath(markdown_path))),
        "runs": runs,
        "rows": rows,
        "summary": summary,
        "verdicts": verdicts,
    }
    document["section"] = distillation_report.render_section(document, summary, verdicts)
    with open(os.path.join(output_dir, f"{stem}.json"), "w", encoding="utf-8") as f:
        json.dump({key: value for key, value in document.items() if key != "section"}, f, indent=2)
    markdown.write_section(markdown_path, SECTION, document["section"])
    return document


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    if not os.path.isfile(_DATA.value):
        raise app.UsageError(f"--data must be the MNIST .npz file. Received: --data={_DATA.value} (not found)")
    quick = _QUICK.value
    seeds = parse_seeds(_SEEDS.value, quick)
    settings = DistillationSettings.quick() if quick else DistillationSettings.full()
    output_dir = _OUTPUT_DIR.value
    if _MARKDOWN.value:
        markdown_path = _MARKDOWN.value
    elif quick:
        markdown_path = os.path.join(output_dir, f"{SECTION}_quick.md")
    else:
        markdown_path = os.path.join(REPO_ROOT, "BENCHMARKS.md")
    command = " ".join(["python -m benchmarks.distillation", *sys.argv[1:]])
    document = run_benchmark(
        _DATA.value, seeds, settings, output_dir=output_dir, markdown_path=markdown_path, command=command, quick=quick
    )
    print(document["section"])


if __name__ == "__main__":
    app.run(main)
