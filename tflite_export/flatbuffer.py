"""Read a ``.tflite`` flatbuffer: operators, tensors, constants and their readers.

The file is parsed with the schema that ships with ``ai_edge_litert``
(``schema_py_generated``). The interpreter's ``get_tensor_details`` cannot tell
constant weights from activations, nor which operator reads a tensor; the
flatbuffer can, and reading it runs nothing.

One subgraph is read: the main one (subgraph 0, the one the interpreter runs) by
default; the bodies of control-flow ops (``WHILE``, ``IF``) live in others,
read with ``subgraph=``.

Example:

>>> import tempfile, os, keras
>>> from tflite_export.converter import convert
>>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
>>> path = convert(model, os.path.join(tempfile.mkdtemp(), "m.tflite"))
>>> [op.name for op in TFLiteFlatbuffer(path).ops]
['FULLY_CONNECTED']
"""

import collections
import os

import numpy as np

Operator = collections.namedtuple("Operator", ["index", "name", "kind", "inputs", "outputs"])
Operator.__doc__ = """One operator: position in execution order, name, kind and tensor ids.

``name`` is the builtin name (``"CONV_2D"``) or, for custom and Flex ops, the
custom code stored in the file (Flex ops are named ``"Flex"`` + the TensorFlow op,
e.g. ``"FlexErf"``). ``kind`` is ``"builtin"``, ``"custom"`` or ``"flex"``.
``inputs`` holds ``-1`` where an optional input (such as a bias) is omitted.
"""

_NUMPY_TYPES = (
    "FLOAT32",
    "FLOAT16",
    "FLOAT64",
    "INT8",
    "UINT8",
    "INT16",
    "UINT16",
    "INT32",
    "UINT32",
    "INT64",
    "UINT64",
    "BOOL",
)


def read_tflite(tflite_path_or_bytes, *, arg_name: str = "tflite_path") -> tuple:
    """Returns ``(label, data)``: a path or ``"<bytes>"``, and the file's bytes.

    Args:
        tflite_path_or_bytes: A path ending in ``.tflite``, or flatbuffer bytes.
        arg_name: The argument name the error messages use.

    Raises:
        ValueError: For a path not ending in ``.tflite``, a missing file, or data
            without the ``TFL3`` flatbuffer identifier.
    """
    from ai_edge_litert import schema_py_generated as schema

    if isinstance(tflite_path_or_bytes, (bytes, bytearray, memoryview)):
        label, data = "<bytes>", bytes(tflite_path_or_bytes)
        received = f"{arg_name}=<{len(data)} bytes>"
    elif isinstance(tflite_path_or_bytes, (str, os.PathLike)):
        label = os.fspath(tflite_path_or_bytes)
        received = f"{arg_name}={label!r}"
        if not label.endswith(".tflite") or not os.path.isfile(label):
            raise ValueError(f"expected an existing '.tflite' file. Received: {received}")
        with open(label, "rb") as handle:
            data = handle.read()
    else:
        raise ValueError(
            "expected a '.tflite' path or flatbuffer bytes. "
            f"Received: {arg_name} of type {type(tflite_path_or_bytes).__name__}"
        )
    if len(data) < 8 or not schema.Model.ModelBufferHasIdentifier(data, 0):
        raise ValueError(f"not a TFLite flatbuffer (no 'TFL3' identifier). Received: {received}")
    return label, data


def strip_strings(flatbuffer: bytes) -> bytes:
    """The file without tensor names, subgraph name, description and signature (same arithmetic)."""
    from ai_edge_litert.tools import flatbuffer_utils

    parsed = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    flatbuffer_utils.strip_strings(parsed)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(parsed))


class TFLiteFlatbuffer:
    """One subgraph of a TFLite file (the main one by default): operators, tensors and constant values.

    Args:
        tflite_path_or_bytes: A path ending in ``.tflite``, or the file's bytes.
        arg_name: The argument name error messages use.
        subgraph: Which subgraph to read: 0, the one the interpreter runs, or
            another such as a ``WHILE`` loop's body.

    Raises:
        ValueError: If the file is missing, not a ``.tflite`` path, or not a
            readable TFLite flatbuffer; the message names the path. Also for a
            ``subgraph`` the file does not have.
    """

    def __init__(self, tflite_path_or_bytes, *, arg_name: str = "tflite_path", subgraph: int = 0):
        from ai_edge_litert import schema_py_generated as schema

        self.label, self.data = read_tflite(tflite_path_or_bytes, arg_name=arg_name)
        try:
            self._model = schema.ModelT.InitFromPackedBuf(self.data, 0)
            graphs = self._model.subgraphs
        except Exception as err:  # A truncated buffer fails anywhere in the parser.
            received = f"<{len(self.data)} bytes>" if self.label == "<bytes>" else repr(self.label)
            raise ValueError(
                f"corrupt TFLite flatbuffer ({type(err).__name__}: {err}). Received: {arg_name}={received}"
            ) from err
        self.subgraph_count = len(graphs)
        if isinstance(subgraph, bool) or not isinstance(subgraph, int) or not 0 <= subgraph < len(graphs):
            raise ValueError(
                f"{self.label!r} has {len(graphs)} subgraph(s), numbered from 0. Received: subgraph={subgraph!r}"
            )
        self._graph = graphs[subgraph]
        self.inputs = [int(t) for t in (self._graph.inputs if self._graph.inputs is not None else [])]
        self.outputs = [int(t) for t in (self._graph.outputs if self._graph.outputs is not None else [])]
        op_names = {value: key for key, value in vars(schema.BuiltinOperator).items() if not key.startswith("_")}
        type_names = {value: key.lower() for key, value in vars(schema.TensorType).items() if not key.startswith("_")}
        self._type_names = type_names
        self._numpy_types = {getattr(schema.TensorType, key): np.dtype(key.lower()) for key in _NUMPY_TYPES}
        self.ops = []
        for index, operator in enumerate(self._graph.operators or []):
            code = self._model.operatorCodes[operator.opcodeIndex]
            builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
            name, kind = op_names.get(builtin, f"UNKNOWN_{builtin}"), "builtin"
            if builtin == schema.BuiltinOperator.CUSTOM:
                custom = code.customCode
                name = custom.decode("utf-8", "replace") if isinstance(custom, bytes) else str(custom or "CUSTOM")
                kind = "flex" if name.startswith("Flex") else "custom"
            inputs = [int(t) for t in (operator.inputs if operator.inputs is not None else [])]
            outputs = [int(t) for t in (operator.outputs if operator.outputs is not None else [])]
            self.ops.append(Operator(index, name, kind, inputs, outputs))

    @property
    def tensor_count(self) -> int:
        """Number of tensors in the main subgraph."""
        return len(self._graph.tensors or [])

    def name(self, tensor_id: int) -> str:
        """The tensor's name; empty in a file whose strings were stripped."""
        name = self._graph.tensors[tensor_id].name
        if name is None:  # A file converted with strip_strings=True.
            return ""
        return name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)

    def dtype(self, tensor_id: int) -> str:
        """The tensor's type as a lower-case name: ``"float32"``, ``"int8"``, ``"int4"``..."""
        tensor_type = self._graph.tensors[tensor_id].type
        return self._type_names.get(tensor_type, f"type_{tensor_type}")

    def shape(self, tensor_id: int) -> list:
        """The stored shape (dynamic dimensions hold 1 here; see ``shape_signature``)."""
        shape = self._graph.tensors[tensor_id].shape
        return [int(d) for d in shape] if shape is not None else []

    def shape_signature(self, tensor_id: int) -> list:
        """The shape with ``-1`` for dynamic dimensions, such as a resizable batch."""
        signature = self._graph.tensors[tensor_id].shapeSignature
        return [int(d) for d in signature] if signature is not None else self.shape(tensor_id)

    def quantization(self, tensor_id: int):
        """``{"scale", "zero_point", "axis"}`` or ``None`` for an unquantized tensor.

        ``axis`` is the quantized dimension for per-channel quantization (more than
        one scale) and ``None`` for per-tensor quantization.
        """
        params = self._graph.tensors[tensor_id].quantization
        if params is None or params.scale is None or not len(params.scale):
            return None
        scale = [float(s) for s in params.scale]
        zero_point = [int(z) for z in params.zeroPoint] if params.zeroPoint is not None else [0] * len(scale)
        axis = int(params.quantizedDimension) if len(scale) > 1 else None
        return {"scale": scale, "zero_point": zero_point, "axis": axis}

    def is_constant(self, tensor_id: int) -> bool:
        """True for a tensor whose data is stored in the file (weights, shapes, indices)."""
        tensor = self._graph.tensors[tensor_id]
        if tensor.isVariable or tensor.buffer <= 0 or tensor.buffer >= len(self._model.buffers):
            return False
        buffer = self._model.buffers[tensor.buffer]
        return buffer.offset > 1 or (buffer.data is not None and len(buffer.data) > 0)

    def values(self, tensor_id: int):
        """The constant's values as a NumPy array, or ``None``.

        ``None`` for activations, and for constants NumPy cannot hold as they are
        stored: packed ``int4``/``int2``, strings, and tensors in TFLite's own
        sparse encoding.
        """
        if not self.is_constant(tensor_id):
            return None
        tensor = self._graph.tensors[tensor_id]
        dtype = self._numpy_types.get(tensor.type)
        if dtype is None or tensor.sparsity is not None:
            return None
        buffer = self._model.buffers[tensor.buffer]
        if buffer.offset > 1:  # large models keep data after the flatbuffer
            raw = self.data[buffer.offset : buffer.offset + buffer.size]
        else:
            raw = np.asarray(buffer.data, np.uint8).tobytes()
        flat = np.frombuffer(raw, dtype.newbyteorder("<"))
        shape = self.shape(tensor_id)
        if flat.size != int(np.prod(shape, dtype=np.int64)):
            return None
        return flat.reshape(shape)

    def options(self, op_index: int):
        """The op's builtin options object of the schema (``Conv2DOptionsT``...), or ``None``."""
        return self._graph.operators[op_index].builtinOptions

    def is_sparse(self, tensor_id: int) -> bool:
        """True for a constant stored in TFLite's sparse encoding (read by a ``DENSIFY`` op)."""
        return self._graph.tensors[tensor_id].sparsity is not None

    def stored_elements(self, tensor_id: int) -> int:
        """How many values the file stores for a constant: every one, or a sparse one's non-zeros."""
        tensor = self._graph.tensors[tensor_id]
        if not self.is_constant(tensor_id):
            return 0
        buffer = self._model.buffers[tensor.buffer]
        size = buffer.size if buffer.offset > 1 else len(buffer.data)
        itemsize = self._numpy_types[tensor.type].itemsize if tensor.type in self._numpy_types else 1
        return int(size) // itemsize

    def constants(self):
        """Yields ``(tensor_id, values)`` for constant weights.

        Weights are floating-point constants, or integer constants with
        quantization parameters; integer constants without them are shapes, axes
        and indices.
        """
        for tensor_id in range(self.tensor_count):
            values = self.values(tensor_id)
            if values is not None and (values.dtype.kind == "f" or self.quantization(tensor_id) is not None):
                yield tensor_id, values

    def producers(self) -> dict:
        """``{tensor_id: op index}`` for every tensor some operator writes."""
        return {output: op.index for op in self.ops for output in op.outputs}

    def readers(self, tensor_id: int) -> list:
        """The ops reading the tensor, as ``"OP:input_index"`` strings."""
        return [f"{op.name}:{op.inputs.index(tensor_id)}" for op in self.ops if tensor_id in op.inputs]

    def weights_of(self, weight_ops: dict):
        """Yields ``(tensor_id, values)`` for the weights of the given ops, once each.

        Args:
            weight_ops: ``{op name: input index of its weights}``.

        A weight reached through a ``DEQUANTIZE`` (float16 files) is the stored
        tensor before it.
        """
        producers = self.producers()
        seen = set()
        for op in self.ops:
            if op.name not in weight_ops or len(op.inputs) <= weight_ops[op.name]:
                continue
            tensor_id = self.stored_source(op.inputs[weight_ops[op.name]], producers)
            values = self.values(tensor_id)
            if values is not None and tensor_id not in seen:
                seen.add(tensor_id)
                yield tensor_id, values

    def stored_source(self, tensor_id: int, producers: dict = None) -> int:
        """The tensor itself, or the constant a ``DEQUANTIZE`` turns into it."""
        producers = self.producers() if producers is None else producers
        if tensor_id in producers:
            producer = self.ops[producers[tensor_id]]
            if producer.name == "DEQUANTIZE" and self.is_constant(producer.inputs[0]):
                return producer.inputs[0]
        return tensor_id

    def zero_point(self, tensor_id: int, ndim: int):
        """The stored value that means 0: the zero point, per channel where the file has one."""
        params = self._graph.tensors[tensor_id].quantization
        if params is None or params.zeroPoint is None or not len(params.zeroPoint):
            return 0
        zero_point = np.asarray(params.zeroPoint, np.int64)
        if zero_point.size == 1:
            return int(zero_point[0])
        shape = [1] * ndim
        shape[params.quantizedDimension] = zero_point.size
        return zero_point.reshape(shape)
