"""Where does int8 lose time? Each layer of a real network timed alone, float32 against int8 (issue 25).

Usage::

    python -m benchmarks.int8_ops                               # MobileNetV2-0.35 at 96x96
    python -m benchmarks.int8_ops --case=mobilenet_v2_035_32 --rounds=9

``benchmarks.int8_latency`` times whole files; this splits one of its cases into its
layers. Every convolution, depthwise convolution, dense layer and addition of the
``keras.applications`` network becomes a one-layer model with the layer's own
configuration and input shape (layers alike in kind, configuration and shape are
timed once and counted as often as they occur). Each is converted twice: float32,
and the converter's int8 with int8 input and output, so that the int8 file holds
the layer's kernel and nothing else (no quantize or dequantize). The whole
network's float32 and int8 files (``int8_latency``'s converter PTQ) take their turns
in the same interleaved pass (LiteRT, XNNPACK, 1 thread, batch 1). The report gives,
per kind of layer, the summed milliseconds of both and their ratio, and the layers
where int8 loses most. Results: ``benchmarks/results/int8_ops.json`` and the
``int8_ops`` section of BENCHMARKS.md.
"""

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

import tflite_export  # noqa: E402
from benchmarks import int8_latency  # noqa: E402
from benchmarks import machine  # noqa: E402
from benchmarks import standalone  # noqa: E402
from benchmarks.core import latency  # noqa: E402
from tflite_export.amx import amx_state  # noqa: E402
from tflite_export.amx import refuse_amx  # noqa: E402

__all__ = ["KINDS", "layer_signatures", "measure", "report", "single_layer_model"]

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Keras class -> the kind reported; anything else (normalization, activations) folds into these.
KINDS = {"Conv2D": "conv", "DepthwiseConv2D": "depthwise", "Dense": "dense", "Add": "add"}
_SHAPING = ("filters", "kernel_size", "strides", "padding", "depth_multiplier", "units", "use_bias")


def _shape(tensor):
    return tuple(int(dim) for dim in tensor.shape[1:])


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


def layer_signatures(model):
    """``{signature: count}`` for the timed layers of ``model``; a signature is (kind, input shapes, config)."""
    counts = {}
    for layer in model.layers:
        kind = KINDS.get(type(layer).__name__)
        if kind is None:
            continue
        inputs = layer.input if isinstance(layer.input, list) else [layer.input]
        config = layer.get_config()
        shaping = tuple((key, _hashable(config[key])) for key in _SHAPING if key in config)
        signature = (kind, tuple(_shape(tensor) for tensor in inputs), shaping, type(layer).__name__)
        counts[signature] = counts.get(signature, 0) + 1
    return counts


def single_layer_model(signature):
    """A functional model of one fresh layer of ``signature``'s class and configuration."""
    _, shapes, shaping, class_name = signature
    inputs = [keras.Input(shape) for shape in shapes]
    layer = getattr(keras.layers, class_name)(**dict(shaping))
    outputs = layer(inputs if class_name == "Add" else inputs[0])
    return keras.Model(inputs, outputs)


def _int8_file(model, path):
    """The converter's int8 file of ``model`` with int8 input and output: only the layer's kernel."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    samples = [[rng.random((1, *_shape(x)), np.float32) for x in model.inputs] for _ in range(16)]
    saved_model = path + ".saved_model"
    model.export(saved_model, format="tf_saved_model", verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: iter(samples)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    with open(path, "wb") as handle:
        handle.write(converter.convert())
    return path


def measure(case, rounds, calls):
    """Per-signature and whole-network milliseconds, float32 and int8, in one interleaved pass."""
    spec = int8_latency.CASES[case]
    whole_calls = spec.calls
    keras.utils.set_random_seed(0)
    network = spec.build()
    signatures = layer_signatures(network)
    logging.info("%s: %d layers timed as %d distinct ones", case, sum(signatures.values()), len(signatures))
    with tempfile.TemporaryDirectory(prefix="kopt-int8-ops-") as workdir:
        whole = int8_latency.convert_files(network, spec.inputs(32), workdir)  # the same whole-network files
        interpreters = {}
        for index, signature in enumerate(signatures):
            model = single_layer_model(signature)
            float_path = tflite_export.convert(model, os.path.join(workdir, f"{index}-float32.tflite"))
            int8_path = _int8_file(model, os.path.join(workdir, f"{index}-int8.tflite"))
            interpreters[(index, "float32")] = latency.ready_interpreter(float_path)
            interpreters[(index, "int8")] = latency.ready_interpreter(int8_path)
        layer_ms = latency.interleaved_ms(interpreters, rounds=rounds, calls=calls)
        whole_ms = latency.interleaved_ms(
            {kind: latency.ready_interpreter(whole[kind]) for kind in ("float32", "converter_int8")},
            rounds=rounds,
            calls=whole_calls,
        )
    layers = []
    for index, (signature, count) in enumerate(signatures.items()):
        kind, shapes, shaping, _ = signature
        layers.append({
            "kind": kind,
            "input": " + ".join("x".join(map(str, shape)) for shape in shapes),
            "config": ", ".join(f"{key}={value}" for key, value in shaping),
            "count": count,
            "float32_ms": round(layer_ms[(index, "float32")], 5),
            "int8_ms": round(layer_ms[(index, "int8")], 5),
        })  # fmt: skip
    return {"case": case, "layers": layers, "whole_ms": {kind: round(ms, 4) for kind, ms in whole_ms.items()}}


def _totals(layers):
    totals = {}
    for layer in layers:
        entry = totals.setdefault(layer["kind"], {"count": 0, "float32_ms": 0.0, "int8_ms": 0.0})
        entry["count"] += layer["count"]
        entry["float32_ms"] += layer["count"] * layer["float32_ms"]
        entry["int8_ms"] += layer["count"] * layer["int8_ms"]
    return totals


def report(document, worst=8):
    """The BENCHMARKS.md section: totals per kind, then the layers where int8 loses most."""
    result = document["result"]
    totals = _totals(result["layers"])
    whole = result["whole_ms"]
    refused = document.get("amx") == "refused"
    lines = [
        "## Where int8 loses time: each layer alone, float32 against int8"
        + (", Intel AMX refused" if refused else "")
        + " (issue 25)",
        "",
        f"Written by `{document['command']}` on {document['machine']}; CPU extensions: "
        f"{', '.join(document['cpu_extensions']) or 'none of those listed'}. Case `{result['case']}` of "
        "`benchmarks.int8_latency`: each convolution, depthwise convolution, dense layer and addition becomes a "
        "one-layer model (its configuration and input shape), converted to float32 and to the converter's int8 "
        "with int8 input and output (no quantize or dequantize in the file). LiteRT, XNNPACK, 1 thread, batch 1, "
        f"all files in turns, {document['rounds']} rounds; figures are medians of the rounds' means, summed over "
        "the layers' occurrences. The whole network's float32 and converter int8 files, timed in the same way: "
        f"{whole['float32']:.3f} ms and {whole['converter_int8']:.3f} ms "
        f"(ratio {whole['converter_int8'] / whole['float32']:.3f})."
        + (
            " The process refused Intel AMX first (`--refuse_amx`, `tflite_export.refuse_amx()`), so XNNPACK's "
            "int8 kernels are those it runs on CPUs without AMX."
            if refused
            else ""
        ),
        "",
        "| kind | layers | float32 ms | int8 ms | int8 / float32 |",
        "|---|---|---|---|---|",
    ]
    for kind, entry in sorted(totals.items(), key=lambda item: -item[1]["float32_ms"]):
        lines.append(
            f"| {kind} | {entry['count']} | {entry['float32_ms']:.3f} | {entry['int8_ms']:.3f} "
            f"| {entry['int8_ms'] / entry['float32_ms']:.3f} |"
        )
    all_float = sum(entry["float32_ms"] for entry in totals.values())
    all_int8 = sum(entry["int8_ms"] for entry in totals.values())
    lines += [f"| all | {sum(e['count'] for e in totals.values())} | {all_float:.3f} | {all_int8:.3f} "
              f"| {all_int8 / all_float:.3f} |", "", f"The {worst} layers where int8 loses most time:", "",
              "| kind | input | configuration | count | float32 ms | int8 ms | ratio |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    losses = sorted(result["layers"], key=lambda layer: layer["count"] * (layer["float32_ms"] - layer["int8_ms"]))
    for layer in losses[:worst]:
        lines.append(
            f"| {layer['kind']} | {layer['input']} | {layer['config']} | {layer['count']} | {layer['float32_ms']} "
            f"| {layer['int8_ms']} | {layer['int8_ms'] / layer['float32_ms']:.2f} |"
        )
    return "\n".join(lines)


def main(argv):
    del argv
    if flags.FLAGS.refuse_amx:
        # Before any conversion or interpreter: a permission once granted cannot be taken back.
        refuse_amx()
    case = flags.FLAGS.case
    standalone.check_choices(
        "case", [case], [name for name, spec in int8_latency.CASES.items() if spec.kind == "image"]
    )
    start_machine = machine.describe_machine()
    result = measure(case, flags.FLAGS.rounds, flags.FLAGS.calls)
    document = standalone.stamp({}, "benchmarks.int8_ops", start_machine)
    document.update(
        cpu_extensions=int8_latency.cpu_extensions(), rounds=flags.FLAGS.rounds, amx=amx_state(), result=result
    )
    standalone.publish(
        document, flags.FLAGS.output, report=report, section=flags.FLAGS.section, markdown_path=flags.FLAGS.markdown
    )


if __name__ == "__main__":
    flags.DEFINE_string("case", "mobilenet_v2_035_96", "A case of benchmarks.int8_latency.CASES.")
    flags.DEFINE_integer("rounds", 7, "Rounds in which every file takes its turn.", lower_bound=1)
    flags.DEFINE_integer("calls", 200, "Calls of each one-layer file per round.", lower_bound=1)
    flags.DEFINE_string("output", os.path.join(_ROOT, "benchmarks", "results", "int8_ops.json"), "JSON results.")
    flags.DEFINE_string("markdown", os.path.join(_ROOT, "BENCHMARKS.md"), "Markdown file whose section is rewritten.")
    flags.DEFINE_string("section", "int8_ops", "The section of --markdown to write.")
    flags.DEFINE_bool("refuse_amx", False, "Refuse Intel AMX to this process first (tflite_export.refuse_amx).")
    app.run(main)
