"""Is int8 faster than float? Latency of real architectures' files, XNNPACK on and off (issue 25).

Usage::

    python -m benchmarks.int8_latency                      # the three default cases
    python -m benchmarks.int8_latency --cases=mobilenet_v2_035_96 --rounds=9
    python -m benchmarks.int8_latency --cases=transformer_encoder_49,lstm_28x28 --section=int8_latency_sequence

Each image case is a ``keras.applications`` network built with ``weights=None``
(latency does not depend on the weights' values) at a small input size; the
sequence cases are the Transformer encoder and the LSTM of
``benchmarks.sequence_agreement``, untrained. Each is converted up to seven ways
(the float-stem, float-prefix and per-tensor files for image networks only): float32; kopt's QAT int8
(``kopt.quantization.quantize_model``, ranges calibrated on 32 random inputs
without training, ``tflite_export.convert(mode="int8")``, float input and output);
the same with the first convolution left in float (``float_layers``,
:attr:`Case.stem`; ``benchmarks.int8_ops`` shows why); the same with the float
prefix ``kopt.quantization.plan_float_prefix`` picks on this machine; the converter's PTQ int8
(per-channel weights, the default); the converter's PTQ int8 with per-tensor
weights; and that file as uint8 (QU8, :mod:`benchmarks.uint8_file`). Every file is
timed in LiteRT with its default XNNPACK delegate and with the builtin kernels
only, 1 thread, batch 1, all files and both settings taking turns in each round;
the figure is the median over rounds of each round's mean, and ratios divide by
float32 with XNNPACK. The CPU's vector extensions are recorded beside the
figures: int8 speed under XNNPACK depends on them (AVX512-VNNI, AVX-VNNI).
Results: ``benchmarks/results/int8_latency.json`` and the ``int8_latency``
section of BENCHMARKS.md.
"""

import dataclasses
import os
import tempfile
import warnings
from collections.abc import Callable
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

import tflite_export  # noqa: E402
from benchmarks import machine  # noqa: E402
from benchmarks import sequence_agreement  # noqa: E402
from benchmarks import standalone  # noqa: E402
from benchmarks import uint8_file  # noqa: E402
from benchmarks.core import latency  # noqa: E402
from kopt import quantization  # noqa: E402
from tflite_export.amx import amx_state  # noqa: E402

__all__ = [
    "CASES",
    "DEFAULT_CASES",
    "FILES",
    "Case",
    "convert_files",
    "cpu_extensions",
    "image_case",
    "measure",
    "report",
]

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass(frozen=True)
class Case:
    """One network to time: how to build it, its representative inputs and the calls per file per round."""

    build: Callable[[], Any]
    inputs: Callable[[int], np.ndarray]  # count -> that many representative inputs
    label: str  # the report's input column: "32x32", "49 tokens"
    calls: int
    stem: str | None = None  # the first convolution (3 input channels), left in float by the float-stem file
    kind: str = "image"  # "image" networks can also be split into one-layer files (benchmarks.int8_ops)


def image_case(build, side, calls, stem=None):
    """A :class:`Case` of ``build(side)`` on random ``side x side`` colour images."""
    return Case(
        build=lambda: build(side),
        inputs=lambda count: np.random.default_rng(0).random((count, side, side, 3), np.float32),
        label=f"{side}x{side}",
        calls=calls,
        stem=stem,
    )


def _mobilenet_v2_035(side):
    return keras.applications.MobileNetV2((side, side, 3), alpha=0.35, weights=None, classes=10)


def _tokens(count):
    return sequence_agreement.tokens(np.random.default_rng(0).random((count, 28, 28)) * 255)


CASES = {
    "mobilenet_v2_035_32": image_case(_mobilenet_v2_035, 32, 400, stem="Conv1"),
    "mobilenet_v2_035_96": image_case(_mobilenet_v2_035, 96, 200, stem="Conv1"),
    "resnet50_64": image_case(
        lambda side: keras.applications.ResNet50(input_shape=(side, side, 3), weights=None, classes=10),
        64,
        10,
        stem="conv1_conv",
    ),
    # The sequence models of benchmarks.sequence_agreement (issue 21): a Transformer encoder over 49 tokens of
    # a digit, and an LSTM over its 28 rows.
    "transformer_encoder_49": Case(
        build=sequence_agreement.MODELS["TransformerEncoder"],
        inputs=_tokens,
        label="49 tokens",
        calls=400,
        kind="sequence",
    ),
    "lstm_28x28": Case(
        build=sequence_agreement.MODELS["LSTM"],
        inputs=lambda count: np.random.default_rng(0).random((count, 28, 28), np.float32),
        label="28 rows of 28",
        calls=400,
        kind="sequence",
    ),
}
DEFAULT_CASES = ("mobilenet_v2_035_32", "mobilenet_v2_035_96", "resnet50_64")
FILES = (
    "float32",
    "kopt_qat_int8",
    "kopt_qat_int8_float_stem",
    "kopt_qat_int8_float_prefix",
    "converter_int8",
    "converter_int8_per_tensor",
    "converter_uint8_per_tensor",
)
_PER_TENSOR = ("converter_int8_per_tensor", "converter_uint8_per_tensor")
_EXTENSIONS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


def cpu_extensions(cpuinfo_path="/proc/cpuinfo"):
    """The vector extensions int8 kernels use that this CPU has, as listed in /proc/cpuinfo."""
    flags = tflite_export.cpu_flags(cpuinfo_path) or frozenset()
    return [name for name in _EXTENSIONS if name in flags]


def convert_files(model, samples, workdir, stem=None, per_tensor=True, float_prefix=False, plans=None):
    """The files of ``model`` (of :data:`FILES`); ``{kind: path}``.

    ``samples`` are the representative inputs: QAT's ranges and the converter's PTQ
    are calibrated on them. The float-stem file needs a ``stem``; the per-tensor
    file goes through a SavedModel, which a recurrent network's dynamic batch keeps
    from converting, so ``per_tensor=False`` leaves it out, and with it its unsigned
    twin (``benchmarks.uint8_file``: the same numbers, as XNNPACK's QU8 kernels take them).
    ``float_prefix=True`` adds the QAT file with the front of the network in float that
    ``kopt.quantization.plan_float_prefix`` picks on this machine; its plan goes into ``plans``.
    """
    images = samples
    left_out = {"kopt_qat_int8_float_stem"} if stem is None else set()
    left_out |= set() if per_tensor else set(_PER_TENSOR)
    left_out |= set() if float_prefix else {"kopt_qat_int8_float_prefix"}
    kinds = [kind for kind in FILES if kind not in left_out]
    paths = {kind: os.path.join(workdir, f"{model.name}-{kind}.tflite") for kind in kinds}
    tflite_export.convert(model, paths["float32"])
    planned = []
    if float_prefix:
        plan = quantization.plan_float_prefix(model, images)
        planned = plan["float_layers"]
        if plans is not None:
            plans["kopt_qat_int8_float_prefix"] = plan
    for kind, float_layers in (
        ("kopt_qat_int8", ()),
        ("kopt_qat_int8_float_stem", (stem,)),
        ("kopt_qat_int8_float_prefix", planned),
    ):
        if kind in paths:
            qat = quantization.quantize_model(model, float_layers=float_layers)
            quantization.calibrate(qat, images)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "still computes in float": the stem, on purpose
                tflite_export.convert(qat, paths[kind], mode="int8")
    tflite_export.convert(model, paths["converter_int8"], mode="int8", representative_dataset=images)
    if per_tensor:
        _convert_per_tensor(model, images, paths["converter_int8_per_tensor"])
        uint8_file.to_uint8(paths["converter_int8_per_tensor"], paths["converter_uint8_per_tensor"])
    return paths


def _convert_per_tensor(model, images, path):
    import tensorflow as tf

    saved_model = os.path.join(os.path.dirname(path), "per_tensor_saved_model")
    model.export(saved_model, format="tf_saved_model", verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([images[i : i + 1]] for i in range(len(images)))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter._experimental_disable_per_channel = True  # the converter's only switch for it
    with open(path, "wb") as handle:
        handle.write(converter.convert())


def measure(case, rounds):
    """One row: each file's size and median milliseconds, XNNPACK on and off, and the ratios."""
    spec = CASES[case]
    calls = spec.calls
    keras.utils.set_random_seed(0)
    model = spec.build()
    with tempfile.TemporaryDirectory(prefix="kopt-int8-latency-") as workdir:
        plans = {}
        image = spec.kind == "image"
        paths = convert_files(
            model, spec.inputs(32), workdir, spec.stem, per_tensor=image, float_prefix=image, plans=plans
        )
        timed = {
            (kind, xnnpack): latency.ready_interpreter(paths[kind], xnnpack=xnnpack)
            for kind in paths
            for xnnpack in (True, False)
        }
        milliseconds = latency.interleaved_ms(timed, rounds=rounds, calls=calls)
        row = {"case": case, "input": spec.label, "params": int(model.count_params()), "calls": calls}
        if plans:
            plan = plans["kopt_qat_int8_float_prefix"]
            row["float_prefix"] = {"cut": plan["cut"], "layers": len(plan["float_layers"])}
            row["float_prefix"]["share"] = round(plan["float_share"], 4)
        row["amx"] = amx_state()
        if row["amx"] != "absent":
            # XNNPACK again in a process that refuses AMX, as on CPUs without it (tflite_export.amx).
            refused = tflite_export.interleaved_latency(paths, rounds=rounds, calls=calls, amx=False)
            for kind, value in refused.items():
                row[f"{kind}_noamx_ms"] = round(value, 4)
                row[f"{kind}_noamx_ratio"] = round(value / refused["float32"], 3)
        for kind in paths:
            row[f"{kind}_kib"] = round(os.path.getsize(paths[kind]) / 1024, 1)
            row[f"{kind}_fully_integer"] = (
                "n/a" if kind == "float32" else tflite_export.is_fully_integer(paths[kind])[0]
            )
    reference = milliseconds[("float32", True)]
    for (kind, xnnpack), value in milliseconds.items():
        label = "xnnpack" if xnnpack else "builtin"
        row[f"{kind}_{label}_ms"] = round(value, 4)
        row[f"{kind}_{label}_ratio"] = round(value / reference, 3)
    return row


def _networks(rows):
    """The sentence's subject: which kinds of network the rows time."""
    kinds = {CASES[row["case"]].kind if row["case"] in CASES else "image" for row in rows}
    parts = []
    if "image" in kinds:
        parts.append("`keras.applications` networks (`weights=None`, 10 classes)")
    if "sequence" in kinds:
        parts.append(
            "the Transformer encoder and the LSTM of `benchmarks.sequence_agreement` (a kopt QAT file keeps "
            "LayerNormalization, the attention scores and the recurrent loop in float, by design)"
        )
    text = " and ".join(parts) or "no network"
    return text[0].upper() + text[1:]


def report(document):
    """The BENCHMARKS.md section; with columns for XNNPACK with AMX refused where the CPU has AMX."""
    amx = any("float32_noamx_ms" in row for row in document["rows"])
    prefix = any("float_prefix" in row for row in document["rows"])
    lines = [
        "## Is int8 faster than float? Real architectures, XNNPACK on and off"
        + (", Intel AMX allowed and refused" if amx else "")
        + " (issue 25)",
        "",
        f"Written by `{document['command']}` on {document['machine']}; CPU extensions: "
        f"{', '.join(document['cpu_extensions']) or 'none of those listed'}. "
        + _networks(document["rows"])
        + " (untrained: latency does not depend on weight values), converted up to "
        + ("seven" if prefix else "six")
        + " ways: float32, kopt's QAT int8 (ranges calibrated on 32 random inputs, no training), the same with the "
        "first convolution left in float (`quantize_model(..., float_layers=[stem])`; image networks), "
        + (
            "the same with the float prefix `kopt.quantization.plan_float_prefix` picks on this machine (image "
            "networks; the prefix of each case is given below the table), "
            if prefix
            else ""
        )
        + "the converter's "
        "PTQ int8 (per-channel), the converter's PTQ int8 with per-tensor weights, and that file rewritten as "
        "uint8 (`benchmarks.uint8_file`: the same numbers, which XNNPACK runs on its unsigned QU8 kernels; image "
        "networks); float input and output throughout. LiteRT, 1 thread, batch 1, with its default XNNPACK "
        f"delegate and with the builtin kernels only; all (file, setting) pairs take turns in each of {document['rounds']} rounds, "
        "the figure is the median of the rounds' means. Ratio = milliseconds / float32 with XNNPACK "
        "(below 1: faster than the float file)."
        + (
            " This CPU has Intel AMX, which XNNPACK's int8 kernels take: *AMX refused* times the XNNPACK files "
            "again, in turns, in a child process that `tflite_export.refuse_amx()` keeps off AMX, as XNNPACK "
            "runs on CPUs without it; its ratio is to the float32 file timed in that process."
            if amx
            else ""
        ),
        "",
        "| case | input | file | KiB | fully integer | XNNPACK ms | ratio | builtin ms | ratio |"
        + (" AMX refused ms | ratio |" if amx else ""),
        "|---|---|---|---|---|---|---|---|---|" + ("---|---|" if amx else ""),
    ]
    for row in document["rows"]:
        for kind in [kind for kind in FILES if f"{kind}_kib" in row]:
            refused = f" {row.get(f'{kind}_noamx_ms', '')} | {row.get(f'{kind}_noamx_ratio', '')} |" if amx else ""
            lines.append(
                f"| {row['case']} | {row['input']} | {kind} | {row[f'{kind}_kib']} | {row[f'{kind}_fully_integer']} "
                f"| {row[f'{kind}_xnnpack_ms']} | {row[f'{kind}_xnnpack_ratio']} "
                f"| {row[f'{kind}_builtin_ms']} | {row[f'{kind}_builtin_ratio']} |" + refused
            )
    notes = [
        f"{row['case']}: float up to {row['float_prefix']['cut'] or 'nothing'} ({row['float_prefix']['layers']} "
        f"layers, {100 * row['float_prefix']['share']:.1f}% of the weights)"
        for row in document["rows"]
        if "float_prefix" in row
    ]
    if notes:
        lines += [
            "",
            "Float prefixes (`plan_float_prefix`, timed with AMX as this process has it): " + "; ".join(notes) + ".",
        ]
    return "\n".join(lines)


def main(argv):
    del argv
    cases = flags.FLAGS.cases
    standalone.check_choices("cases", cases, CASES)
    start_machine = machine.describe_machine()
    rows = []
    for case in cases:
        rows.append(measure(case, flags.FLAGS.rounds))
        logging.info("%s", rows[-1])
    document = standalone.stamp({}, "benchmarks.int8_latency", start_machine)
    document.update(cpu_extensions=cpu_extensions(), rounds=flags.FLAGS.rounds, rows=rows)
    standalone.publish(
        document, flags.FLAGS.output, report=report, section=flags.FLAGS.section, markdown_path=flags.FLAGS.markdown
    )


if __name__ == "__main__":
    flags.DEFINE_list("cases", list(DEFAULT_CASES), f"Cases to measure, any of {', '.join(CASES)}.")
    flags.DEFINE_integer("rounds", 7, "Rounds in which every file takes its turn.", lower_bound=1)
    flags.DEFINE_string(
        "output", os.path.join(_ROOT, "benchmarks", "results", "int8_latency.json"), "JSON results file."
    )
    flags.DEFINE_string("markdown", os.path.join(_ROOT, "BENCHMARKS.md"), "Markdown file whose section is rewritten.")
    flags.DEFINE_string(
        "section", "int8_latency", "The section of --markdown to write (another machine's run keeps its own)."
    )
    app.run(main)
