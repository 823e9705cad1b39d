"""A per-tensor int8 ``.tflite`` file rewritten as its unsigned (QU8) twin, to time XNNPACK's uint8 kernels.

TFLite's first integer format was unsigned: ``uint8`` tensors with a zero point
in ``[0, 255]``. The converter of TensorFlow 2 writes only the signed format
(QS8), but XNNPACK still has unsigned kernels (QU8), and on an x86 CPU with Intel
AMX they are a different code path from the signed ones: the question issue 25
asks ("QS8 vs QU8"). The two formats are the same numbers, shifted: a signed
value ``q`` with zero point ``z`` is the unsigned value ``q + 128`` with zero
point ``z + 128``, so every dequantized value is unchanged. In the stored bytes,
adding 128 to an ``int8`` is flipping its top bit.

QU8 has no per-channel weights, so only a file whose every ``int8`` tensor has one
scale and one zero point can be rewritten (the converter's
``_experimental_disable_per_channel``; ``benchmarks.int8_latency``'s
``converter_int8_per_tensor``). This is a benchmark's tool, not kopt's export: the
unsigned format is legacy, and TFLite Micro and most NPUs run only the signed one.
"""

import numpy as np

from tflite_export.atomic import atomic_write_bytes

__all__ = ["to_uint8"]


def to_uint8(source_path, target_path):
    """Writes ``source_path``'s per-tensor int8 file to ``target_path`` with every int8 tensor as uint8.

    Args:
        source_path: A ``.tflite`` file whose int8 tensors are quantized per tensor.
        target_path: Where the unsigned file is written.

    Returns:
        The number of tensors rewritten.

    Raises:
        ValueError: Naming the tensor, if one is quantized per channel (QU8 has one
            scale per tensor), or if the file has no int8 tensor to rewrite.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(source_path)
    flipped_buffers = set()
    rewritten = 0
    for subgraph in model.subgraphs:
        for tensor in subgraph.tensors:
            if tensor.type != schema.TensorType.INT8:
                continue
            zero_point = np.asarray(tensor.quantization.zeroPoint if tensor.quantization else [], np.int64)
            if zero_point.size != 1:
                name = tensor.name.decode() if isinstance(tensor.name, bytes) else tensor.name
                raise ValueError(
                    f"tensor {name!r} of {source_path} has {zero_point.size} zero points: uint8 needs one "
                    "scale and zero point per tensor (convert with per-tensor weights)."
                )
            tensor.type = schema.TensorType.UINT8
            tensor.quantization.zeroPoint = zero_point + 128
            buffer = model.buffers[tensor.buffer]
            # Tensors may share a buffer; its bytes are shifted once.
            if tensor.buffer not in flipped_buffers and buffer.data is not None and len(buffer.data):
                buffer.data = np.asarray(buffer.data, np.uint8) ^ np.uint8(0x80)
                flipped_buffers.add(tensor.buffer)
            rewritten += 1
    if not rewritten:
        raise ValueError(f"{source_path} has no int8 tensor to rewrite as uint8.")
    atomic_write_bytes(target_path, bytes(flatbuffer_utils.convert_object_to_bytearray(model)))
    return rewritten
