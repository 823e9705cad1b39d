"""A ``.tflite`` file as C source, for TFLite Micro: an aligned byte array and its length.

Microcontroller firmware has no file system; the model is compiled into it as a
constant array, which TFLite Micro reads in place (``tflite::GetModel(g_model)``).
The array must be aligned for the flatbuffer's tables (16 bytes suffices), and
the build needs its length. :func:`write_c_source` writes ``NAME.cc`` with both
and a ``NAME.h`` that declares them, each atomically.
"""

import os
import re

from tflite_export.atomic import atomic_write_bytes

__all__ = ["c_source", "write_c_source"]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BYTES_PER_LINE = 12


def _check(variable_name, alignment):
    if not isinstance(variable_name, str) or not _IDENTIFIER.match(variable_name):
        raise ValueError(f"variable_name must be a C identifier. Received: variable_name={variable_name!r}")
    if isinstance(alignment, bool) or not isinstance(alignment, int) or alignment < 1 or alignment & (alignment - 1):
        raise ValueError(f"alignment must be a power of two, e.g. 16. Received: alignment={alignment!r}")


def c_source(data, variable_name="g_model", alignment=16, header_name=None):
    """The C++ source defining ``data`` as an aligned constant array and its length.

    Args:
        data: The ``.tflite`` file's bytes.
        variable_name: The array's name; the length is ``<name>_len``.
        alignment: Byte alignment of the array (a power of two).
        header_name: A header to ``#include`` first, or ``None``.

    Returns:
        The source text.

    Example:

    >>> print(c_source(b"TFL3", "g_tiny"))
    // A TFLite model as a C array (4 bytes), written by tflite_export.write_c_source.
    alignas(16) const unsigned char g_tiny[] = {
        0x54, 0x46, 0x4c, 0x33,
    };
    const unsigned int g_tiny_len = 4;
    <BLANKLINE>
    """
    _check(variable_name, alignment)
    data = bytes(data)
    lines = [f"// A TFLite model as a C array ({len(data)} bytes), written by tflite_export.write_c_source."]
    if header_name is not None:
        lines.append(f'#include "{header_name}"')
        lines.append("")
    lines.append(f"alignas({alignment}) const unsigned char {variable_name}[] = {{")
    for start in range(0, len(data), _BYTES_PER_LINE):
        chunk = data[start : start + _BYTES_PER_LINE]
        lines.append("    " + " ".join(f"0x{byte:02x}," for byte in chunk))
    lines.append("};")
    lines.append(f"const unsigned int {variable_name}_len = {len(data)};")
    return "\n".join(lines) + "\n"


def write_c_source(
    tflite_path_or_bytes: str | os.PathLike | bytes,
    output_path: str | os.PathLike,
    *,
    variable_name: str = "g_model",
    alignment: int = 16,
) -> tuple[str, str]:
    """Writes ``output_path`` (``.cc``) with the model array and a header beside it (``.h``).

    Args:
        tflite_path_or_bytes: The ``.tflite`` file or its bytes.
        output_path: Destination ending in ``.cc`` or ``.cpp``; the header gets
            the same name ending in ``.h``.
        variable_name: The array's name (a C identifier); the length is ``<name>_len``.
        alignment: Byte alignment of the array; 16 by default, as TFLite Micro wants.

    Returns:
        ``(source_path, header_path)``.

    Raises:
        ValueError: For a bad argument or a missing file, before anything is written.

    Example:

    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> source, header = write_c_source(b"TFL3", os.path.join(folder, "model.cc"))
    >>> print(open(header).read().splitlines()[-2])
    extern const unsigned int g_model_len;
    """
    _check(variable_name, alignment)
    output_path = os.fspath(output_path)
    if not output_path.endswith((".cc", ".cpp")):
        raise ValueError(f"output_path must end in .cc or .cpp. Received: output_path={output_path!r}")
    if isinstance(tflite_path_or_bytes, (bytes, bytearray)):
        data = bytes(tflite_path_or_bytes)
    else:
        path = os.fspath(tflite_path_or_bytes)
        if not os.path.isfile(path):
            raise ValueError(f"tflite_path_or_bytes is not a file. Received: {path!r}")
        with open(path, "rb") as handle:
            data = handle.read()
    header_path = os.path.splitext(output_path)[0] + ".h"
    guard = re.sub(r"[^A-Za-z0-9]", "_", os.path.basename(header_path)).upper()
    header = (
        f"// Declares the TFLite model array of {os.path.basename(output_path)}.\n"
        f"#ifndef {guard}\n#define {guard}\n\n"
        f"extern const unsigned char {variable_name}[];\n"
        f"extern const unsigned int {variable_name}_len;\n"
        f"#endif  // {guard}\n"
    )
    atomic_write_bytes(header_path, header.encode())
    source = c_source(data, variable_name, alignment, header_name=os.path.basename(header_path))
    atomic_write_bytes(output_path, source.encode())
    return output_path, header_path
