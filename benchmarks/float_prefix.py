"""Int8 faster than float on trained CIFAR-10 networks: a measured float prefix against the fully integer file (issue 25).

Usage::

    python -m benchmarks.float_prefix                 # seeds 0,1,2, MobileNetV2 on CIFAR-10
    python -m benchmarks.float_prefix --models=resnet20   # another network; the section keeps both
    python -m benchmarks.float_prefix --quick         # minutes: a smoke run, not figures

Per seed and network (``benchmarks.cifar_models``; MobileNetV2 alpha 0.35 at 32x32
by default): the float model is trained from scratch with the CIFAR suite's recipe
(:class:`benchmarks.cifar_settings.CifarSettings`: 15 epochs, Adam, cosine decay
from 2e-3, batch 64, flips and 4-pixel shifts), then quantized two ways, each
fine-tuned with the suite's QAT recipe (2 epochs at 1e-4):

- ``qat_int8``: ``kopt.quantization.quantize_model`` as it comes, a fully integer file;
- ``qat_int8_float_prefix``: ``kopt.quantization.plan_float_prefix`` times int8
  files with float prefixes of several lengths on this machine (at most 5% of the
  weights in float) and ``quantize_model(..., float_layers=plan["float_layers"])``
  leaves the fastest prefix in float.

Accuracy: each file on the test images in LiteRT. All files of a seed are timed in
one interleaved pass (LiteRT, XNNPACK, 1 thread, batch 1, the median of the
rounds' means), and again in a child process that refuses Intel AMX
(``tflite_export.refuse_amx``), as XNNPACK runs on CPUs without it; ratios are to
the float32 file of the same pass.

Results: ``benchmarks/results/float_prefix.json`` and the ``float_prefix`` section of BENCHMARKS.md.
"""

import json
import os
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

import tflite_export  # noqa: E402
from benchmarks import cifar_models  # noqa: E402
from benchmarks import cifar_training  # noqa: E402
from benchmarks import machine  # noqa: E402
from benchmarks import standalone  # noqa: E402
from benchmarks.cifar_settings import CifarSettings  # noqa: E402
from benchmarks.core import data as core_data  # noqa: E402
from benchmarks.core import scoring  # noqa: E402
from kopt import quantization  # noqa: E402

__all__ = ["FILES", "earlier_parts", "measure_seed", "report", "summarize"]

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(os.path.dirname(_ROOT), "shared", "data", "cifar10-15k.npz")
FILES = ("float32", "qat_int8", "qat_int8_float_prefix")
PLAN_EXAMPLES = 32


def measure_seed(model_name, seed, settings, x_train, y_train, x_test, y_test, *, max_float_share):
    """One seed's rows: each file's accuracy, size and latency with AMX as it comes and refused."""
    keras.utils.set_random_seed(seed)
    started = time.perf_counter()

    def train(model, epochs, rate):
        return cifar_training.train(keras, model, x_train, y_train, epochs=epochs, learning_rate=rate, seed=seed)

    dense = cifar_models.build(model_name, keras, seed)
    logging.info("seed %d: %s, float training (%d epochs)", seed, model_name, settings.float_epochs)
    train(dense, settings.float_epochs, settings.float_learning_rate)
    plan = quantization.plan_float_prefix(
        dense,
        x_train[:PLAN_EXAMPLES],
        max_float_share=max_float_share,
        rounds=settings.latency_rounds,
        calls=settings.latency_calls,
        log=logging.info,
    )
    models = {"float32": dense}
    for name, float_layers in (("qat_int8", []), ("qat_int8_float_prefix", plan["float_layers"])):
        logging.info("seed %d: %s, %s (%d float layers)", seed, model_name, name, len(float_layers))
        models[name] = quantization.quantize_model(dense, float_layers=float_layers)
        train(models[name], settings.qat_epochs, settings.qat_learning_rate)
    rows = []
    with tempfile.TemporaryDirectory(prefix="kopt-float-prefix-bench-") as workdir:
        paths = {}
        for name, model in models.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the prefix "still computes in float", on purpose
                paths[name] = tflite_export.convert(
                    model, os.path.join(workdir, f"{name}.tflite"), mode="float32" if name == "float32" else "int8"
                )
        timing = {"rounds": settings.latency_rounds, "calls": settings.latency_calls}
        amx_ms = tflite_export.interleaved_latency(paths, **timing)
        refused_ms = tflite_export.interleaved_latency(paths, amx=False, **timing)
        for name, path in paths.items():
            with open(path, "rb") as handle:
                data = handle.read()
            rows.append(
                {
                    "model": model_name,
                    "seed": seed,
                    "file": name,
                    "accuracy": float(np.mean(scoring.interpreter_top1(data, x_test) == y_test)),
                    "kib": round(len(data) / 1024, 1),
                    "fully_integer": None if name == "float32" else tflite_export.is_fully_integer(path)[0],
                    "ms": round(amx_ms[name], 5),
                    "ratio": round(amx_ms[name] / amx_ms["float32"], 3),
                    "noamx_ms": round(refused_ms[name], 5),
                    "noamx_ratio": round(refused_ms[name] / refused_ms["float32"], 3),
                }
            )
    plan_row = {key: plan[key] for key in ("cut", "ms", "int8_ms", "float_ms", "candidates", "amx")}
    plan_row |= {"model": model_name, "seed": seed, "float_layers": len(plan["float_layers"])}
    logging.info("seed %d: %s done in %.1f min", seed, model_name, (time.perf_counter() - started) / 60)
    return rows, plan_row


def summarize(rows):
    """Per network and file: the mean of each figure over seeds, and the seeds' values."""
    out = []
    for model_name in dict.fromkeys(row["model"] for row in rows):
        for name in FILES:
            mine = [row for row in rows if row["model"] == model_name and row["file"] == name]
            if not mine:
                continue
            entry = {"model": model_name, "file": name, "seeds": [row["seed"] for row in mine]}
            for key in ("accuracy", "kib", "ratio", "noamx_ratio"):
                entry[key] = [row[key] for row in mine]
                entry[f"{key}_mean"] = float(np.mean(entry[key]))
            out.append(entry)
    return out


def report(document):
    """The BENCHMARKS.md section."""
    settings = document["settings"]
    lines = [
        "## Int8 faster than float: a measured float prefix on MobileNetV2 and ResNet-20, CIFAR-10 (issue 25)",
        "",
        f"Written by {_parts(document)}. "
        f"Data: {document['data']}. Per seed, the network is trained from scratch with the CIFAR suite's recipe "
        f"({settings['float_epochs']} epochs, Adam, cosine decay from {settings['float_learning_rate']}, batch 64, "
        "flips and 4-pixel shifts), then quantized two ways, each fine-tuned with the suite's QAT recipe "
        f"({settings['qat_epochs']} epochs at {settings['qat_learning_rate']}): `qat_int8`, "
        "`quantize_model` as it comes (fully integer); `qat_int8_float_prefix`, the layers of "
        "`kopt.quantization.plan_float_prefix(model, 32 training images, "
        f"max_float_share={settings['max_float_share']})` left in float: it times int8 files with float "
        "prefixes of several lengths on this machine and keeps the shortest within 2% of the fastest. "
        "Accuracy: each file on the test images in LiteRT. Latency: all files of a seed in one interleaved "
        f"pass (LiteRT, XNNPACK, 1 thread, batch 1, {settings['latency_rounds']} rounds of "
        f"{settings['latency_calls']} calls, the median of the rounds' means), then again in a child process "
        "that refuses Intel AMX, as XNNPACK runs on CPUs without it; ratio: to the float32 file of that pass "
        "(below 1: faster).",
        "",
        "| network | file | accuracy % | KiB | latency ratio | latency ratio, AMX refused |",
        "|---|---|---|---|---|---|",
    ]
    for entry in document["summary"]:
        cells = [
            f"{100 * entry['accuracy_mean']:.2f} ({'/'.join(f'{100 * v:.2f}' for v in entry['accuracy'])})",
            f"{entry['kib_mean']:.0f}",
            f"{entry['ratio_mean']:.3f} ({'/'.join(f'{v:.3f}' for v in entry['ratio'])})",
            f"{entry['noamx_ratio_mean']:.3f} ({'/'.join(f'{v:.3f}' for v in entry['noamx_ratio'])})",
        ]
        lines.append(f"| {entry['model']} | {entry['file']} | " + " | ".join(cells) + " |")
    lines += ["", "Each plan (timed with AMX as the machine has it, before QAT):", ""]
    lines += ["| network | seed | float up to | float layers | float share of weights | ms | fully integer ms |"]
    lines += ["|---|---|---|---|---|---|---|"]
    for plan in document["plans"]:
        chosen = next(row for row in plan["candidates"] if row["cut"] == plan["cut"])
        lines.append(
            f"| {plan['model']} | {plan['seed']} | {plan['cut'] or 'nothing'} | {plan['float_layers']} "
            f"| {100 * chosen['float_share']:.1f}% | {plan['ms']:.4f} | {plan['int8_ms']:.4f} |"
        )
    return "\n".join(lines)


def earlier_parts(path, models):
    """What an earlier run at ``path`` measured for networks other than ``models``: ``(parts, rows, plans)``.

    A run of other networks (``--models=resnet20`` after MobileNetV2) keeps the
    earlier rows, and the section names each part's command.
    """
    if not os.path.isfile(path):
        return [], [], []
    with open(path, encoding="utf-8") as handle:
        earlier = json.load(handle)
    rows = [row for row in earlier["rows"] if row["model"] not in models]
    plans = [plan for plan in earlier["plans"] if plan["model"] not in models]
    kept = {row["model"] for row in rows}
    parts = earlier.get("parts") or [
        {key: earlier[key] for key in ("command", "machine", "elapsed_min")}
        | {"models": sorted({row["model"] for row in earlier["rows"]})}
    ]
    return [part for part in parts if set(part["models"]) <= kept], rows, plans


def _parts(document):
    parts = document.get("parts") or [document | {"models": []}]
    return "; ".join(
        f"`{part['command']}`"
        + (f" ({', '.join(part['models'])})" if len(parts) > 1 else "")
        + f" on {part['machine']}, {part['elapsed_min']} min"
        for part in parts
    )


def main(argv):
    del argv
    started = time.time()
    quick = flags.FLAGS.quick
    settings = CifarSettings.quick() if quick else CifarSettings()
    max_train = settings.max_train_examples
    x_train, y_train, x_test, y_test = cifar_training.load_cifar(
        core_data.load_arrays(flags.FLAGS.data, max_train), settings.as_dict()
    )
    seeds = [0] if quick else [int(seed) for seed in flags.FLAGS.seeds]
    models = list(flags.FLAGS.models)
    output = os.path.join(flags.FLAGS.output_dir, f"float_prefix{'_quick' if quick else ''}.json")
    parts, rows, plans = earlier_parts(output, models)
    start_machine = machine.describe_machine()
    for model_name in models:
        for seed in seeds:
            seed_rows, plan = measure_seed(
                model_name, seed, settings, x_train, y_train, x_test, y_test,
                max_float_share=flags.FLAGS.max_float_share,
            )  # fmt: skip
            rows += seed_rows
            plans.append(plan)
    document = standalone.stamp({}, "benchmarks.float_prefix", start_machine)
    elapsed = round((time.time() - started) / 60, 1)
    parts.append({"command": document["command"], "machine": document["machine"], "elapsed_min": elapsed})
    parts[-1]["models"] = models
    recipe = {key: getattr(settings, key) for key in ("float_epochs", "float_learning_rate", "qat_epochs")}
    recipe |= {"qat_learning_rate": settings.qat_learning_rate, "latency_rounds": settings.latency_rounds}
    recipe |= {"latency_calls": settings.latency_calls, "max_float_share": flags.FLAGS.max_float_share}
    document.update(
        data=core_data.data_summary(flags.FLAGS.data, max_train),
        settings=recipe,
        seeds=seeds,
        rows=rows,
        plans=plans,
        parts=parts,
        summary=summarize(rows),
        elapsed_min=elapsed,
    )
    standalone.publish_seeded_run(
        document,
        "float_prefix",
        quick=quick,
        output_dir=flags.FLAGS.output_dir,
        markdown_path=flags.FLAGS.markdown,
        report=report,
    )


if __name__ == "__main__":
    flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds; each trains its own float model.")
    flags.DEFINE_list("models", ["mobilenet_v2"], f"Networks, among {cifar_models.MODELS}.")
    flags.DEFINE_float("max_float_share", 0.05, "Largest share of the weights the prefix may leave in float.")
    flags.DEFINE_string("data", DATA, "CIFAR-10 archive (.npz).")
    flags.DEFINE_boolean("quick", False, "A smoke run of minutes; its figures mean nothing.")
    flags.DEFINE_string("output_dir", os.path.join(_ROOT, "benchmarks", "results"), "Where the JSON goes.")
    flags.DEFINE_string("markdown", os.path.join(_ROOT, "BENCHMARKS.md"), "The markdown file to update.")
    app.run(main)
