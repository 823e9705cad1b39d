"""Does a pruned model run faster with sparse weights? LiteRT/XNNPACK, dense against sparse files (issue 25).

Usage::

    python -m benchmarks.sparse_inference                  # the default cases
    python -m benchmarks.sparse_inference --cases=fast_sparse_mobilenet_v1_128 --rounds=9

XNNPACK has sparse kernels for the networks of "Fast Sparse ConvNets" (Elsen et
al. 2019): a 3x3 stride-2 stem over 3 channels padded by one on each side, then
1x1 convolutions, depthwise convolutions with explicit padding and
elementwise ops up to a global average pooling, with more than 2/3 of the 1x1
weights zero. Each case builds such a network (a MobileNet v1 or v2 in that
form, ``weights`` random: latency does not depend on their values), prunes its
1x1 convolutions with kopt's ``PruneForLatencyOnXNNPack`` policy to each
sparsity (constant schedule, one masking step, no training), strips the
wrappers and converts it twice: dense float32 and ``sparse_weights=True``.
The unpruned network's float file is the reference. Every file is timed in
LiteRT with its default XNNPACK delegate, 1 thread, batch 1, all files taking
turns in each round; the figure is the median of the rounds' means, and the
ratio divides by the reference. ``tflite_export.sparse_inference_check`` says
whether each file has the form the sparse kernels take. A last case checks
``keras.applications.MobileNetV2`` against the policy: its stride-2 layers pad
one side only, which the sparse kernels do not take, and the policy says so.

Results: ``benchmarks/results/sparse_inference.json``, a PNG beside it, and the
``sparse_inference`` section of BENCHMARKS.md.
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
from benchmarks import machine  # noqa: E402
from benchmarks import pruning_plot  # noqa: E402
from benchmarks import standalone  # noqa: E402
from benchmarks.core import latency  # noqa: E402
from kopt import pruning  # noqa: E402

__all__ = ["CASES", "DEFAULT_CASES", "build_fast_sparse_mobilenet", "measure", "plot", "report"]

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# name -> (version, alpha, input side, calls per file per round)
CASES = {
    "fast_sparse_mobilenet_v1_128": (1, 1.0, 128, 20),
    "fast_sparse_mobilenet_v2_128": (2, 1.0, 128, 20),
    "tiny": (2, 0.25, 64, 2),  # for the tests
}
DEFAULT_CASES = ("fast_sparse_mobilenet_v1_128", "fast_sparse_mobilenet_v2_128")
SPARSITIES = (0.8, 0.9)
# MobileNet v1: (filters, stride) of each depthwise-separable block.
_V1_BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
# MobileNet v2: (expansion, filters, repeats, first stride) of each stage.
_V2_STAGES = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def build_fast_sparse_mobilenet(version, alpha, side, classes=10):
    """A MobileNet (v1 or v2) in the form XNNPACK's sparse kernels take: every padding explicit and even."""
    inputs = keras.Input((side, side, 3))
    x = keras.layers.ZeroPadding2D(1)(inputs)
    x = keras.layers.Conv2D(int(32 * alpha), 3, strides=2, use_bias=False)(x)
    x = keras.layers.ReLU(6.0)(keras.layers.BatchNormalization()(x))

    def depthwise(x, stride):
        x = keras.layers.ZeroPadding2D(1)(x)
        x = keras.layers.DepthwiseConv2D(3, strides=stride, use_bias=False)(x)
        return keras.layers.ReLU(6.0)(keras.layers.BatchNormalization()(x))

    def pointwise(x, filters, activation=True):
        x = keras.layers.BatchNormalization()(keras.layers.Conv2D(filters, 1, use_bias=False)(x))
        return keras.layers.ReLU(6.0)(x) if activation else x

    if version == 1:
        for filters, stride in _V1_BLOCKS:
            x = pointwise(depthwise(x, stride), int(filters * alpha))
    else:
        channels = int(32 * alpha)
        for expansion, filters, repeats, first_stride in _V2_STAGES:
            for index in range(repeats):
                stride = first_stride if index == 0 else 1
                out = int(filters * alpha)
                y = pointwise(x, channels * expansion) if expansion != 1 else x
                y = pointwise(depthwise(y, stride), out, activation=False)
                x = keras.layers.Add()([x, y]) if stride == 1 and out == channels else y
                channels = out
        x = pointwise(x, 1280)
    x = keras.layers.GlobalAveragePooling2D(keepdims=True)(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(classes)(x), name=f"fast_sparse_mobilenet_v{version}")


def _pruned(model, sparsity, side):
    """``model`` with its 1x1 convolutions magnitude-pruned to ``sparsity`` through kopt's XNNPACK policy."""
    wrapped = pruning.prune_low_magnitude(
        model,
        pruning_schedule=pruning.ConstantSparsity(sparsity, begin_step=0),
        pruning_policy=pruning.PruneForLatencyOnXNNPack(),
    )
    wrapped.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    images = np.random.default_rng(0).random((1, side, side, 3), np.float32)
    wrapped.fit(images, np.zeros((1, 10), np.float32), epochs=1, verbose=0, callbacks=[pruning.UpdatePruningStep()])
    return pruning.strip_pruning(wrapped)


def measure(case, rounds, sparsities=SPARSITIES):
    """One case: each file's size, eligibility and median milliseconds, and the ratios to the unpruned file
    (pruned to each of ``sparsities``)."""
    version, alpha, side, calls = CASES[case]
    keras.utils.set_random_seed(0)
    model = build_fast_sparse_mobilenet(version, alpha, side)
    files = {}
    with tempfile.TemporaryDirectory(prefix="kopt-sparse-inference-") as workdir:
        files["unpruned"] = tflite_export.convert(model, os.path.join(workdir, "unpruned.tflite"), batch_size=1)
        for sparsity in sparsities:
            pruned = _pruned(model, sparsity, side)
            for sparse in (False, True):
                name = f"pruned_{sparsity:.0%}_{'sparse' if sparse else 'dense'}"
                files[name] = tflite_export.convert(
                    pruned, os.path.join(workdir, f"{name}.tflite"), batch_size=1, sparse_weights=sparse
                )
        timed = {name: latency.ready_interpreter(path) for name, path in files.items()}
        probe = np.random.default_rng(2).random(timed["unpruned"].get_input_details()[0]["shape"]).astype(np.float32)
        milliseconds = latency.interleaved_ms(timed, rounds=rounds, calls=calls)
        rows = []
        for name, path in files.items():
            check = tflite_export.sparse_inference_check(path)
            # A dense pruned file against the unpruned one; a sparse file against the dense file of its model.
            if name == "unpruned":
                compared_with = None
            elif name.endswith("_sparse"):
                compared_with = name[: -len("_sparse")] + "_dense"
            else:
                compared_with = "unpruned"
            rows.append(
                {
                    "file": name,
                    "kib": round(os.path.getsize(path) / 1024, 1),
                    "eligible": check["eligible"],
                    "reasons": check["reasons"],
                    "zero_fraction": check["zero_fraction"],
                    "ms": round(milliseconds[name], 4),
                    "ratio": round(milliseconds[name] / milliseconds["unpruned"], 3),
                    "max_abs_difference": None
                    if compared_with is None
                    else _difference(timed[name], timed[compared_with], probe),
                }
            )
    return {"case": case, "input": f"{side}x{side}", "params": int(model.count_params()), "calls": calls, "files": rows}


def _difference(interpreter, other, images):
    outputs = []
    for each in (interpreter, other):
        each.set_tensor(each.get_input_details()[0]["index"], images)
        each.invoke()
        outputs.append(each.get_tensor(each.get_output_details()[0]["index"]).copy())
    return float(np.max(np.abs(outputs[0] - outputs[1])))


def keras_mobilenet_v2_policy():
    """What ``PruneForLatencyOnXNNPack`` says about ``keras.applications.MobileNetV2`` (alpha 0.35, 96x96)."""
    model = keras.applications.MobileNetV2((96, 96, 3), alpha=0.35, weights=None, classes=10)
    try:
        pruning.PruneForLatencyOnXNNPack().ensure_model_supports_pruning(model)
    except ValueError as err:
        return {"accepted": False, "message": str(err)}
    return {"accepted": True, "message": ""}


def report(document):
    """The BENCHMARKS.md section."""
    lines = [
        "## Sparse inference: pruned MobileNets, dense against sparse files under XNNPACK (issue 25)",
        "",
        f"Written by `{document['command']}` on {document['machine']}. Each network is a MobileNet in the form "
        "XNNPACK's sparse kernels take (explicit, even padding; 3x3 stride-2 stem; global average pooling), "
        "random weights (latency does not depend on their values), its 1x1 convolutions pruned by kopt's "
        "`PruneForLatencyOnXNNPack` policy to each sparsity (no training), converted dense and with "
        "`sparse_weights=True`. LiteRT with its default XNNPACK delegate, 1 thread, batch 1, static shapes; "
        f"all files take turns in each of {document['rounds']} rounds, the figure is the median of the rounds' "
        "means. Ratio = milliseconds / the unpruned dense file (below 1: faster). `eligible`: "
        "`tflite_export.sparse_inference_check` finds the form XNNPACK documents for its sparse path.",
        "",
        "| case | input | file | KiB | eligible | 1x1 zeros | ms | ratio | max abs. difference |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in document["rows"]:
        for entry in row["files"]:
            zeros = "" if entry["zero_fraction"] is None else f"{entry['zero_fraction']:.1%}"
            difference = "" if entry["max_abs_difference"] is None else f"{entry['max_abs_difference']:.1e}"
            lines.append(
                f"| {row['case']} | {row['input']} | {entry['file']} | {entry['kib']} | {entry['eligible']} "
                f"| {zeros} | {entry['ms']} | {entry['ratio']} | {difference} |"
            )
    policy = document["keras_mobilenet_v2_policy"]
    lines += [
        "",
        "Max. abs. difference: a dense pruned file against the unpruned one (pruning changes outputs), a sparse "
        "file against the dense file of the same pruned model (storage alone: should be ~0).",
        "",
        f"`keras.applications.MobileNetV2` (alpha 0.35, 96x96) under the policy: "
        f"{'accepted' if policy['accepted'] else 'refused: ' + policy['message']}",
        "",
        "The CPU decides before the file does: XNNPACK's x86 builds switch to the sparse (NCHW) path only on "
        "CPUs without AVX, since their x86 sparse kernels are SSE only, so on an AVX CPU an eligible file runs "
        "densified with the dense kernels and can be no faster than the dense file. Elsen et al.'s speed-ups are "
        "on Arm phones. This run's CPU (`tflite_export.xnnpack_sparse_cpu`): "
        + (document["this_cpu"]["reason"] if "this_cpu" in document else "not recorded (a run before the check)")
        + ".",
    ]
    return "\n".join(lines)


def plot(document, path):
    """Latency ratio of every file, one group per case."""
    figure, axes = pruning_plot.pyplot().subplots(figsize=(8, 3.5))
    names = [entry["file"] for entry in document["rows"][0]["files"]]
    width = 0.8 / max(len(document["rows"]), 1)
    for index, row in enumerate(document["rows"]):
        ratios = [entry["ratio"] for entry in row["files"]]
        axes.bar(np.arange(len(names)) + index * width, ratios, width, label=row["case"])
    axes.axhline(1.0, color="black", linewidth=0.8)
    axes.set_xticks(np.arange(len(names)) + width * (len(document["rows"]) - 1) / 2, names, rotation=15)
    axes.set_ylabel("latency / unpruned dense file")
    axes.legend(fontsize=8)
    return pruning_plot.save_figure(figure, path, "XNNPACK, 1 thread, batch 1 (below 1: faster)")


def main(argv):
    del argv
    cases = flags.FLAGS.cases
    standalone.check_choices("cases", cases, CASES)
    start_machine = machine.describe_machine()
    rows = []
    for case in cases:
        rows.append(measure(case, flags.FLAGS.rounds))
        logging.info("%s", rows[-1])
    document = standalone.stamp({}, "benchmarks.sparse_inference", start_machine)
    document.update(
        rounds=flags.FLAGS.rounds,
        sparsities=list(SPARSITIES),
        rows=rows,
        keras_mobilenet_v2_policy=keras_mobilenet_v2_policy(),
        this_cpu=tflite_export.xnnpack_sparse_cpu(),
    )
    standalone.publish(
        document,
        flags.FLAGS.output,
        report=report,
        section="sparse_inference",
        markdown_path=flags.FLAGS.markdown,
        plot=plot,
    )


if __name__ == "__main__":
    flags.DEFINE_list("cases", list(DEFAULT_CASES), f"Cases to measure, any of {', '.join(CASES)}.")
    flags.DEFINE_integer("rounds", 7, "Rounds in which every file takes its turn.", lower_bound=1)
    flags.DEFINE_string(
        "output", os.path.join(_ROOT, "benchmarks", "results", "sparse_inference.json"), "JSON results file."
    )
    flags.DEFINE_string("markdown", os.path.join(_ROOT, "BENCHMARKS.md"), "Markdown file whose section is rewritten.")
    app.run(main)
