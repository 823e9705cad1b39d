"""Give convolutions their padding back as a ``PAD`` op, as XNNPACK's sparse path wants.

The TFLite converter folds ``ZeroPadding2D`` followed by a ``padding="valid"``
convolution into one op with SAME padding whenever the two compute the same
thing. XNNPACK's dense kernels do not mind, but its sparse path (see
:mod:`tflite_export.sparse_inference`) refuses a depthwise convolution with
SAME padding, so a network built in the form of "Fast Sparse ConvNets" loses its
eligibility in conversion (the 3x3 stem convolution too).
:func:`explicit_depthwise_padding` undoes the fold in the flatbuffer: each SAME
``DEPTHWISE_CONV_2D`` or ``CONV_2D`` whose implied padding is the same on both
sides of each axis, and not zero, reads a ``PAD`` of that amount and becomes VALID.
The arithmetic is unchanged; XNNPACK folds the ``PAD`` back into the
convolution in its own graph, where the padding stays explicit.

Example:

>>> import tempfile, os, keras
>>> from tflite_export.converter import convert
>>> from tflite_export.flatbuffer import TFLiteFlatbuffer
>>> inputs = keras.Input((8, 8, 4))
>>> model = keras.Model(inputs, keras.layers.DepthwiseConv2D(3, padding="same")(inputs))
>>> path = convert(model, os.path.join(tempfile.mkdtemp(), "m.tflite"))
>>> with open(path, "rb") as handle:
...     data = explicit_depthwise_padding(handle.read())
>>> [op.name for op in TFLiteFlatbuffer(data).ops]
['PAD', 'DEPTHWISE_CONV_2D']
"""

import numpy as np

__all__ = ["explicit_depthwise_padding"]


def explicit_depthwise_padding(flatbuffer: bytes) -> bytes:
    """The file with each evenly SAME-padded ``DEPTHWISE_CONV_2D``/``CONV_2D`` made a ``PAD`` + VALID pair.

    Args:
        flatbuffer: The ``.tflite`` file's bytes.

    Returns:
        The rewritten file's bytes (the same bytes when nothing needed it).
        Convolutions whose SAME padding is uneven (stride 2 over an
        even size pads one row after and none before) are left as they are.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(flatbuffer, 0)
    graph = model.subgraphs[0]
    codes = [max(code.builtinCode, code.deprecatedBuiltinCode) for code in model.operatorCodes]
    convolutions = (schema.BuiltinOperator.DEPTHWISE_CONV_2D, schema.BuiltinOperator.CONV_2D)
    operators, changed = [], False
    for op in graph.operators:
        pads = _symmetric_pads(graph, op, codes[op.opcodeIndex] in convolutions)
        if pads is not None:
            operators.append(_pad_op(model, graph, op, pads, _pad_code(model, codes, schema), schema))
            op.builtinOptions.padding = schema.Padding.VALID
            changed = True
        operators.append(op)
    if not changed:
        return bytes(flatbuffer)
    graph.operators = operators
    builder = flatbuffers.Builder(len(flatbuffer) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _symmetric_pads(graph, op, is_convolution):
    """``(pad_h, pad_w)`` of a SAME 2-D convolution padded evenly and not by zero, else ``None``."""
    options = op.builtinOptions
    if not is_convolution or options is None or options.padding != 0:  # 0: SAME
        return None
    shape = list(graph.tensors[op.inputs[0]].shape)
    kernel = list(graph.tensors[op.inputs[1]].shape)
    if len(shape) != 4 or len(kernel) != 4:
        return None
    pads = []
    for size, k, stride, dilation in (
        (shape[1], kernel[1], options.strideH, options.dilationHFactor or 1),
        (shape[2], kernel[2], options.strideW, options.dilationWFactor or 1),
    ):
        span = (k - 1) * dilation + 1
        total = max((-(-size // stride) - 1) * stride + span - size, 0)
        if total % 2:
            return None
        pads.append(total // 2)
    return tuple(pads) if any(pads) else None


def _pad_code(model, codes, schema):
    """The index of the ``PAD`` operator code, added to the file if missing."""
    pad = schema.BuiltinOperator.PAD
    if pad not in codes:
        code = schema.OperatorCodeT()
        code.builtinCode = code.deprecatedBuiltinCode = pad
        code.version = 1
        model.operatorCodes.append(code)
        codes.append(pad)
    return codes.index(pad)


def _pad_op(model, graph, op, pads, pad_code, schema):
    """A ``PAD`` op writing a new tensor that ``op`` then reads instead of its input."""
    source = graph.tensors[op.inputs[0]]
    amounts = np.array([[0, 0], [pads[0], pads[0]], [pads[1], pads[1]], [0, 0]], np.int32)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(amounts.astype("<i4").tobytes(), np.uint8)
    model.buffers.append(buffer)
    paddings = schema.TensorT()
    paddings.shape, paddings.type, paddings.buffer = [4, 2], schema.TensorType.INT32, len(model.buffers) - 1
    paddings.name = (source.name or b"") + b"/explicit_padding"
    padded = schema.TensorT()
    padded.shape = [source.shape[0], source.shape[1] + 2 * pads[0], source.shape[2] + 2 * pads[1], source.shape[3]]
    if source.shapeSignature is not None:
        signature = list(source.shapeSignature)
        padded.shapeSignature = [
            d if d < 0 or axis in (0, 3) else d + 2 * pads[axis - 1] for axis, d in enumerate(signature)
        ]
    padded.type, padded.buffer, padded.quantization = source.type, 0, source.quantization
    padded.name = (source.name or b"") + b"/padded"
    graph.tensors.extend([paddings, padded])
    pad = schema.OperatorT()
    pad.opcodeIndex = pad_code
    pad.inputs = [op.inputs[0], len(graph.tensors) - 2]
    pad.outputs = [len(graph.tensors) - 1]
    pad.builtinOptionsType = schema.BuiltinOptions.PadOptions
    pad.builtinOptions = schema.PadOptionsT()
    op.inputs = [len(graph.tensors) - 1, *list(op.inputs)[1:]]
    return pad
