"""Which Keras layers each kopt technique handles, read from the techniques themselves.

The table is not kept by hand: :func:`layer_support` asks each technique's own
registry about one instance of every layer class in :data:`CANDIDATES`
(``kopt.pruning.is_prunable``, ``kopt.clustering.is_clusterable``, the
quantization registry's ``quantize_config_for``/``is_passthrough`` and the
structured-pruning roles), so README's table, written by
``python -m kopt.layer_support --readme``, changes when a registry does. Layers
outside every registry can still join through the protocols
(``get_prunable_weights``, ``get_clusterable_weights``, a ``QuantizeConfig``).

Example:

>>> support = layer_support()
>>> support["Dense"]["qat"], support["Flatten"]["qat"], support["LSTM"]["qat"]
('weights', 'passthrough', 'weights')
"""

import os

import keras

__all__ = ["CANDIDATES", "layer_support", "markdown_table"]

L = keras.layers

# layer class -> (constructor, input shape without the batch, number of inputs); the
# layers people put in the models they ship.
_IMAGE, _SEQUENCE = (8, 8, 4), (6, 4)
CANDIDATES = {
    "Dense": (lambda: L.Dense(2), (4,), 1),
    "EinsumDense": (lambda: L.EinsumDense("ab,bc->ac", output_shape=2), (4,), 1),
    "Conv1D": (lambda: L.Conv1D(2, 3), _SEQUENCE, 1),
    "Conv2D": (lambda: L.Conv2D(2, 3), _IMAGE, 1),
    "DepthwiseConv1D": (lambda: L.DepthwiseConv1D(3), _SEQUENCE, 1),
    "DepthwiseConv2D": (lambda: L.DepthwiseConv2D(3), _IMAGE, 1),
    "SeparableConv1D": (lambda: L.SeparableConv1D(2, 3), _SEQUENCE, 1),
    "SeparableConv2D": (lambda: L.SeparableConv2D(2, 3), _IMAGE, 1),
    "Conv1DTranspose": (lambda: L.Conv1DTranspose(2, 3), _SEQUENCE, 1),
    "Conv2DTranspose": (lambda: L.Conv2DTranspose(2, 3), _IMAGE, 1),
    "Embedding": (lambda: L.Embedding(4, 2), (3,), 1),
    "MultiHeadAttention": (lambda: L.MultiHeadAttention(2, 2), _SEQUENCE, 2),
    "LSTM": (lambda: L.LSTM(2), _SEQUENCE, 1),
    "GRU": (lambda: L.GRU(2), _SEQUENCE, 1),
    "SimpleRNN": (lambda: L.SimpleRNN(2), _SEQUENCE, 1),
    "Bidirectional(LSTM)": (lambda: L.Bidirectional(L.LSTM(2)), _SEQUENCE, 1),
    "ConvLSTM2D": (lambda: L.ConvLSTM2D(2, 3), (3, *_IMAGE), 1),
    "TimeDistributed(Dense)": (lambda: L.TimeDistributed(L.Dense(2)), _SEQUENCE, 1),
    "TimeDistributed(Conv2D)": (lambda: L.TimeDistributed(L.Conv2D(2, 3)), (3, *_IMAGE), 1),
    "BatchNormalization": (lambda: L.BatchNormalization(), _IMAGE, 1),
    "LayerNormalization": (lambda: L.LayerNormalization(), _SEQUENCE, 1),
    "Rescaling": (lambda: L.Rescaling(0.5), _IMAGE, 1),
    "Normalization": (lambda: L.Normalization(mean=0.0, variance=1.0), _IMAGE, 1),
    "ReLU": (lambda: L.ReLU(), _IMAGE, 1),
    "LeakyReLU": (lambda: L.LeakyReLU(0.1), _IMAGE, 1),
    "PReLU": (lambda: L.PReLU(shared_axes=[1, 2]), _IMAGE, 1),
    "Activation": (lambda: L.Activation("swish"), _IMAGE, 1),
    "Softmax": (lambda: L.Softmax(), (4,), 1),
    "Add": (lambda: L.Add(), _IMAGE, 2),
    "Multiply": (lambda: L.Multiply(), _IMAGE, 2),
    "Concatenate": (lambda: L.Concatenate(), _IMAGE, 2),
    "AveragePooling2D": (lambda: L.AveragePooling2D(2), _IMAGE, 1),
    "GlobalAveragePooling2D": (lambda: L.GlobalAveragePooling2D(), _IMAGE, 1),
    "MaxPooling2D": (lambda: L.MaxPooling2D(2), _IMAGE, 1),
    "UpSampling2D": (lambda: L.UpSampling2D(), _IMAGE, 1),
    "ZeroPadding2D": (lambda: L.ZeroPadding2D(), _IMAGE, 1),
    "Flatten": (lambda: L.Flatten(), _IMAGE, 1),
    "Reshape": (lambda: L.Reshape((-1,)), _IMAGE, 1),
    "RepeatVector": (lambda: L.RepeatVector(3), (4,), 1),
    "Dropout": (lambda: L.Dropout(0.1), _IMAGE, 1),
}
_TECHNIQUES = ("prune", "cluster", "qat", "structured")
_LEGEND = {
    "prune": (
        "`prune_low_magnitude` (magnitude, block, M:N) wraps it: yes, named (only when wrapped on its own or "
        "named in `layer_schedules`; a whole model leaves it dense), no"
    ),
    "cluster": "`cluster_weights` wraps it: yes / no",
    "qat": (
        "`quantize_model`: weights (weights and output quantized; a recurrent layer's loop stays float in the "
        "file, with its kernels on the int8 grid; PReLU's slopes on the int8 grid the converter gives them), "
        "split (SeparableConv1D/2D runs as a depthwise and a 1x1 "
        "convolution, MultiHeadAttention as four Dense projections around a float attention core, each "
        "quantized like weights, TimeDistributed(Dense) as the Dense it applies at every step), output (a new "
        "output range), "
        "passthrough (keeps its input's grid), no (refused with the layer's name)"
    ),
    "structured": (
        "`prune_channels`: producer (its channels can be removed; a recurrent layer's units, from every gate), heads (whole attention heads can be "
        "removed), follows (adapts to channels removed before "
        "it), keeps whole (reads every channel, so what it reads is not pruned), no (refused)"
    ),
}


def layer_support() -> dict:
    """``{layer class name: {"prune", "cluster", "qat", "structured"}}`` for :data:`CANDIDATES`."""
    from kopt.clustering.clusterable import is_clusterable
    from kopt.pruning.prunable import is_dense_by_default
    from kopt.pruning.prunable import is_prunable
    from kopt.pruning.structured_layers import classify
    from kopt.quantization.attention import unsupported_reason
    from kopt.quantization.frames import unwrapped_frames
    from kopt.quantization.registry import Bits
    from kopt.quantization.registry import is_passthrough
    from kopt.quantization.registry import quantize_config_for
    from kopt.quantization.splits import split_separable
    from kopt.quantization.splits import unwrapped_dense

    bits = Bits()
    support = {}
    for name, (make, shape, arity) in CANDIDATES.items():
        layer = make()
        # Called in a small graph, so the structured-pruning role is read as in a real model.
        inputs = [keras.Input(shape, dtype="int32" if name == "Embedding" else "float32") for _ in range(arity)]
        model = keras.Model(
            inputs, layer(*inputs) if name == "MultiHeadAttention" else layer(inputs if arity > 1 else inputs[0])
        )
        entry = next(item for item in model.get_config()["layers"] if item["config"]["name"] == layer.name)
        role = classify(layer, entry, entry["inbound_nodes"][0], shared=False)
        config = quantize_config_for(layer, bits)
        if (
            split_separable(layer) is not None
            or unwrapped_dense(layer) is not None
            or unwrapped_frames(layer) is not None
            or (isinstance(layer, L.MultiHeadAttention) and unsupported_reason(layer) is None)
        ):
            qat = "split"
        elif is_passthrough(layer):
            qat = "passthrough"
        elif config is None:
            qat = "no"
        else:
            qat = "weights" if getattr(config, "weight_attrs", None) else "output"
        support[name] = {
            "prune": ("named" if is_dense_by_default(layer) else "yes") if is_prunable(layer) else "no",
            "cluster": "yes" if is_clusterable(layer) else "no",
            "qat": qat,
            "structured": _ROLES.get(role, role),
        }
    return support


# structured_layers' roles, as a user reads them.
_ROLES = {
    "producer": "producer",
    "recurrent": "producer",
    "bidirectional": "producer",
    "attention": "heads",
    "depthwise": "follows",
    "normalization": "follows",
    "pass": "follows",
    "flatten": "follows",
    "concat": "follows",
    "merge": "follows",
    "mixing": "keeps whole",
    "opaque": "no",
}


def markdown_table(support=None) -> str:
    """The README table of :func:`layer_support`, with its legend."""
    support = layer_support() if support is None else support
    lines = ["| layer | " + " | ".join(_TECHNIQUES) + " |", "|---" * (len(_TECHNIQUES) + 1) + "|"]
    for name, row in support.items():
        lines.append(f"| {name} | " + " | ".join(row[t] for t in _TECHNIQUES) + " |")
    lines.append("")
    lines.extend(f"- **{technique}**: {text}" for technique, text in _LEGEND.items())
    return "\n".join(lines)


def _main(argv):
    table = markdown_table()
    print(table)
    if "--readme" in argv[1:]:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        _write_section(os.path.join(root, "README.md"), table)
    return 0


def _write_section(path, table):
    begin, end = "<!-- layer_support:begin -->", "<!-- layer_support:end -->"
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    if text.count(begin) != 1 or text.count(end) != 1:
        raise SystemExit(f"{path} needs one {begin} and one {end} line to write the table between")
    head, rest = text.split(begin)
    _, tail = rest.split(end)
    body = f"{begin}\nGenerated by `python -m kopt.layer_support --readme`; do not edit by hand.\n\n{table}\n{end}"
    from tflite_export.atomic import atomic_write_bytes

    atomic_write_bytes(path, (head + body + tail).encode("utf-8"))


if __name__ == "__main__":
    import sys

    raise SystemExit(_main(sys.argv))
