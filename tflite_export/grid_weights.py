"""Store float32 weights that hold int8-grid values as int8, read through ``DEQUANTIZE``.

Some ops of a quantization-aware model stay float in the TFLite file: the
``WHILE`` loop of an LSTM, GRU or SimpleRNN layer (TFLite has no integer loop),
a ``CONV_3D`` (TFLite's is float only). Their kernels were trained on an int8
grid, so every value is ``q * scale`` with an integer ``q`` in ``[-127, 127]``,
but the converter writes them as float32: four bytes where one would do, and
most of an LSTM model's weights. :func:`int8_grid_weights` rewrites the file so
that each such constant is an int8 tensor (with its one scale) read by a
``DEQUANTIZE`` op whose output replaces the float tensor. The op's input is a
constant, so the runtime dequantizes it once, when the interpreter first runs
it, not on each step of the loop; the arithmetic is the float arithmetic it was,
on the same values (``q * scale`` rounded to float32, within one unit in the last
place of what the converter wrote).

Only the kernels of convolution, dense and matmul ops are candidates, and one is
rewritten only when its values lie on such a grid (checked, not assumed), so
float weights a model kept in float on purpose (``float_layers``) stay as they
are, and the function may be run on any file.

Example:

>>> import numpy as np
>>> scale = np.float32(0.01)
>>> values = (np.arange(-127, 128, dtype=np.float32) * scale).reshape(15, 17)
>>> round(float(grid_scale(values)), 6)
0.01
>>> grid_scale(np.float32([0.1, 0.25, 1 / 3])) is None
True
"""

import numpy as np

__all__ = ["grid_scale", "int8_grid_weights"]

_DEQUANTIZE_INT8_VERSION = 2  # TFLite's DEQUANTIZE reads int8 from version 2.
# The ops whose weights are rewritten, and the input position of their kernel.
_KERNEL_INPUTS = {
    "FULLY_CONNECTED": 1,
    "CONV_2D": 1,
    "DEPTHWISE_CONV_2D": 1,
    "CONV_3D": 1,
    "TRANSPOSE_CONV": 1,
    "CONV_3D_TRANSPOSE": 1,
    "BATCH_MATMUL": 1,
}


def grid_scale(values, *, max_level: int = 127):
    """The scale of the symmetric integer grid ``values`` lie on, or ``None``.

    Args:
        values: A float32 array (any shape).
        max_level: The largest grid index allowed in magnitude (127: int8,
            narrow range).

    Returns:
        ``scale`` (a float32) such that every value is ``round(v / scale) *
        scale`` with ``|round(v / scale)| <= max_level``, to within four units in
        the last place of the largest value; ``None`` when there is no such grid
        (or the array is all zeros).
    """
    flat = np.asarray(values, np.float32).ravel()
    magnitudes = np.unique(np.abs(flat))
    peak = float(magnitudes[-1]) if magnitudes.size else 0.0
    if peak == 0.0 or not np.isfinite(peak):
        return None
    tolerance = 4 * float(np.spacing(np.float32(peak)))
    steps = np.diff(np.concatenate([[0.0], magnitudes.astype(np.float64)]))
    # Float64 throughout: a float32 sum over a large kernel is off by more than the tolerance.
    exact = flat.astype(np.float64)
    levels = np.rint(exact / steps[steps > tolerance].min())
    if np.abs(levels).max() > max_level:
        return None
    scale = np.float32(np.dot(exact, levels) / np.dot(levels, levels))
    levels = np.rint(exact / float(scale))
    if np.abs(levels).max() > max_level:
        return None
    # What DEQUANTIZE computes: the int8 level times the stored float32 scale, in float32.
    if np.abs(levels.astype(np.float32) * scale - flat).max() > tolerance:
        return None
    return scale


def int8_grid_weights(flatbuffer: bytes, *, min_elements: int = 256) -> tuple:
    """The file with each float32 kernel on an int8 grid stored as int8 + ``DEQUANTIZE``.

    A kernel is a constant read only as the weights of a ``FULLY_CONNECTED``,
    ``CONV_2D``, ``DEPTHWISE_CONV_2D``, ``CONV_3D``, ``TRANSPOSE_CONV``,
    ``CONV_3D_TRANSPOSE`` or ``BATCH_MATMUL``, with a buffer of its own; kernels
    already quantized or stored sparse are left alone.

    Args:
        flatbuffer: The ``.tflite`` file's bytes.
        min_elements: Kernels with fewer values are left as they are (the op
            and the tensor would cost more than they save).

    Returns:
        ``(bytes, names)``: the rewritten file (the same bytes when nothing was
        rewritten) and the names of the rewritten tensors, in every subgraph
        (the bodies of ``WHILE`` loops included).
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(flatbuffer, 0)
    sharing = _buffer_users(model)
    codes = [max(code.builtinCode, code.deprecatedBuiltinCode) for code in model.operatorCodes]
    kernel_ops = {getattr(schema.BuiltinOperator, name): position for name, position in _KERNEL_INPUTS.items()}
    code_index = None
    rewritten = []
    for graph in model.subgraphs:
        dequantizes = []
        for index in _kernels(graph, codes, kernel_ops):
            tensor = graph.tensors[index]
            values = _float_constant(model, tensor, min_elements, sharing)
            scale = None if values is None else grid_scale(values)
            if scale is None:
                continue
            if code_index is None:
                code_index = _dequantize_code(model, schema)
            dequantizes.append(_dequantize_op(model, graph, index, values, scale, code_index, schema))
            rewritten.append((tensor.name or b"").decode("utf-8", "replace"))
        graph.operators = dequantizes + list(graph.operators or [])
    if not rewritten:
        return bytes(flatbuffer), []
    builder = flatbuffers.Builder(len(flatbuffer))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), rewritten


def _kernels(graph, codes, kernel_ops):
    """The tensors read only as the weights of conv/dense/matmul ops (not, say, a LayerNorm's gamma)."""
    kernel, other = set(), set()
    for op in graph.operators or []:
        position = kernel_ops.get(codes[op.opcodeIndex])
        for at, tensor in enumerate(op.inputs if op.inputs is not None else []):
            (kernel if at == position else other).add(int(tensor))
    return sorted(kernel - other)


def _buffer_users(model):
    """How many tensors (in all subgraphs) use each buffer."""
    counts = {}
    for graph in model.subgraphs:
        for tensor in graph.tensors:
            counts[tensor.buffer] = counts.get(tensor.buffer, 0) + 1
    return counts


def _float_constant(model, tensor, min_elements, sharing):
    """The float32 values of a constant tensor with one buffer of its own, else ``None``."""
    if tensor.type != 0 or tensor.buffer <= 0 or sharing.get(tensor.buffer, 0) != 1:  # 0: FLOAT32
        return None
    if tensor.sparsity is not None:  # Stored in TFLite's sparse format, read by DENSIFY.
        return None
    if tensor.quantization is not None and tensor.quantization.scale is not None:
        return None
    data = model.buffers[tensor.buffer].data
    if data is None or len(data) < 4 * min_elements:
        return None
    return np.frombuffer(bytes(data), "<f4")


def _dequantize_code(model, schema):
    """The index of an operator code for ``DEQUANTIZE`` that reads int8 (added or raised to version 2)."""
    dequantize = schema.BuiltinOperator.DEQUANTIZE
    for index, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == dequantize:
            code.version = max(code.version, _DEQUANTIZE_INT8_VERSION)
            return index
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = dequantize
    code.version = _DEQUANTIZE_INT8_VERSION
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _dequantize_op(model, graph, index, values, scale, code_index, schema):
    """An int8 constant beside tensor ``index`` and the ``DEQUANTIZE`` op that now writes that tensor."""
    tensor = graph.tensors[index]
    levels = np.rint(values.astype(np.float64) / float(scale)).astype(np.int8)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(levels.tobytes(), np.uint8)
    model.buffers[tensor.buffer].data = None
    model.buffers.append(buffer)
    quantization = schema.QuantizationParametersT()
    quantization.scale, quantization.zeroPoint = [float(scale)], [0]
    stored = schema.TensorT()
    stored.shape = tensor.shape
    stored.shapeSignature = tensor.shapeSignature
    stored.type, stored.buffer, stored.quantization = schema.TensorType.INT8, len(model.buffers) - 1, quantization
    stored.name = (tensor.name or b"") + b"/int8"
    graph.tensors.append(stored)
    tensor.buffer = 0
    op = schema.OperatorT()
    op.opcodeIndex = code_index
    op.inputs = [len(graph.tensors) - 1]
    op.outputs = [index]
    return op
