"""``python -m tflite_export MODEL.keras OUT.tflite --mode=int8 --data=digits``.

Converts a saved Keras model in the chosen mode, converts it in float32 too for
reference, runs both files on the test split of ``--data`` in the LiteRT
interpreter, times both at batch 1 with XNNPACK on and off, prints a table, and
with ``--report=r.json`` writes the comparison as JSON and a PNG beside it.

Bad input (arguments, paths, mode, data) prints one line,
``tflite_export: error: ...``, and exits with status 2 before any conversion.
The flags live in their own ``FlagValues``, so this module can share a process with
``kopt-optimize``.
"""

import importlib.metadata
import inspect
import os
import sys
import tempfile

from absl import flags

_PROGRAM = "tflite_export"
_USAGE = (
    "usage: python -m tflite_export MODEL.keras OUT.tflite [--mode=int8] [--data=digits] [--report=r.json] "
    "[--fixed_batch] [--strip_strings] [--sparse_weights]"
)
FLAGS = flags.FlagValues()
_MODE = flags.DEFINE_enum(
    "mode", "int8", ["float32", "float16", "dynamic", "int8", "int16x8"], "Conversion mode.", flag_values=FLAGS
)
_DATA = flags.DEFINE_string(
    "data",
    "digits",
    "Labelled data: digits, mnist, fashion_mnist, cifar10, tfds:NAME, npz:PATH or dir:FOLDER (a subfolder per class).",
    flag_values=FLAGS,
)
_CUSTOM_LAYERS = flags.DEFINE_list(
    "custom_layers",
    None,
    "Module names or .py files to import before loading MODEL: the ones that register its own layers.",
    flag_values=FLAGS,
)
_IMAGE_SIZE = flags.DEFINE_string(
    "image_size", None, "HEIGHT,WIDTH (or one side) to resize --data's images to, e.g. the model's.", flag_values=FLAGS
)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TensorFlow Datasets data directory.", flag_values=FLAGS)
_IO_TYPE = flags.DEFINE_enum(
    "io_type", "float32", ["float32", "int8", "uint8"], "Input/output type in the integer modes.", flag_values=FLAGS
)
_REPORT = flags.DEFINE_string(
    "report", None, "Write the comparison as JSON here, and a PNG beside it.", flag_values=FLAGS
)
_RUNS = flags.DEFINE_integer(
    "runs", 50, "Timed interpreter calls per file and XNNPACK setting.", lower_bound=1, flag_values=FLAGS
)
_THREADS = flags.DEFINE_integer("threads", 1, "Interpreter threads.", lower_bound=1, flag_values=FLAGS)
_AMX = flags.DEFINE_bool(
    "amx",
    True,
    "Let XNNPACK's int8 kernels use Intel AMX where the CPU has it; --noamx times in a process that refuses "
    "it, as on CPUs without AMX (phones, AMD): on AMX Xeons int8 files of small networks run faster so.",
    flag_values=FLAGS,
)
_ALLOW_FLEX = flags.DEFINE_bool("allow_flex_ops", False, "Allow TensorFlow (Flex) ops.", flag_values=FLAGS)
_FIXED_BATCH = flags.DEFINE_bool(
    "fixed_batch",
    False,
    "Fix the batch dimension at 1 (static shapes, as microcontroller runtimes want).",
    flag_values=FLAGS,
)
_STRIP_STRINGS = flags.DEFINE_bool(
    "strip_strings",
    False,
    "Remove tensor names and the signature from the file (smaller, same arithmetic).",
    flag_values=FLAGS,
)
_FUSE_LSTM = flags.DEFINE_bool(
    "fuse_lstm",
    False,
    "Plain LSTM layers as TFLite's fused UNIDIRECTIONAL_SEQUENCE_LSTM op (smaller; fully integer in "
    "int8; slower under XNNPACK).",
    flag_values=FLAGS,
)
_FOLD_TIME_DISTRIBUTED = flags.DEFINE_bool(
    "fold_time_distributed",
    True,
    "Each TimeDistributed layer once over every frame, not once per frame (same function, faster); "
    "--nofold_time_distributed keeps Keras' per-frame ops.",
    flag_values=FLAGS,
)
_GRID_WEIGHTS_INT8 = flags.DEFINE_bool(
    "grid_weights_int8",
    True,
    "In a quantization-aware int8 file, store the int8-grid kernels of ops TFLite keeps float (a recurrent "
    "loop's, a Conv3D's) as int8 read through DEQUANTIZE (a quarter of their bytes, same arithmetic); "
    "--nogrid_weights_int8 keeps them float32.",
    flag_values=FLAGS,
)
_SPARSE_WEIGHTS = flags.DEFINE_bool(
    "sparse_weights",
    False,
    "Store mostly-zero (pruned) weights in TFLite's sparse format, and say whether XNNPACK's sparse "
    "kernels can take the file.",
    flag_values=FLAGS,
)


def main(argv=None):
    """Runs the command; returns the comparison dict."""
    argv = sys.argv if argv is None else argv
    from tflite_export import cli_help as help_lib

    if help_lib.wants_help(argv):
        own = {name: FLAGS[name] for name in FLAGS}
        print(help_lib.format_help(
            f"{_PROGRAM}: convert a .keras model, check the file against it, compare size and latency.\n\n{_USAGE}",
            own, [("Conversion", ["mode", "io_type", "allow_flex_ops", "fixed_batch", "strip_strings", "fuse_lstm",
                                          "fold_time_distributed", "grid_weights_int8", "sparse_weights"]),
                  ("Data and report", ["custom_layers", "data", "data_dir", "image_size", "report", "runs", "threads", "amx"])],
        ))  # fmt: skip
        sys.exit(0)
    if help_lib.wants_version(argv):
        print(f"{_PROGRAM} {_version()}")
        sys.exit(0)
    try:
        positional = FLAGS(argv)[1:]
    except flags.Error as err:
        _usage_error(str(err))
    if len(positional) != 2:
        _usage_error(f"expected MODEL.keras and OUT.tflite, got {len(positional)} argument(s). {_USAGE}")
    model_path, output_path = positional
    if not output_path.endswith(".tflite"):
        _usage_error(f"OUT must end in '.tflite'. Received: {output_path!r}")
    if not os.path.isfile(model_path):
        _usage_error(f"MODEL does not exist. Received: {model_path!r}")
    if _IO_TYPE.value != "float32" and _MODE.value not in ("int8",):
        _usage_error(f"--io_type={_IO_TYPE.value} needs --mode=int8. Received: --mode={_MODE.value}")

    import tflite_export
    from tflite_export import export_hooks
    from tflite_export import plugins

    if _CUSTOM_LAYERS.value:
        try:
            plugins.import_user_modules(_CUSTOM_LAYERS.value)
        except ValueError as err:
            _usage_error(f"--custom_layers={','.join(_CUSTOM_LAYERS.value)}: {err}")
    load_dataset = plugins.dataset_loader()
    if load_dataset is None:
        _usage_error(f"--data={_DATA.value}: no installed library provides datasets (kopt-keras does)")
    resize = {} if _IMAGE_SIZE.value is None else {"image_size": _image_size(_IMAGE_SIZE.value)}
    if resize and "image_size" not in inspect.signature(load_dataset).parameters:
        _usage_error(f"--image_size={_IMAGE_SIZE.value}: the installed dataset plugin does not resize images")
    try:
        train, test, info = load_dataset(_DATA.value, data_dir=_DATA_DIR.value, **resize)
    except ValueError as err:
        _usage_error(f"--data={_DATA.value}: {getattr(err, 'reason', err)}")
    try:
        model = tflite_export.converter.load_model(model_path)
    except ValueError as err:
        _usage_error(str(err))
    expected = tuple(model.input_shape[1:])
    if expected != tuple(info.input_shape):
        _usage_error(
            f"model {model.name!r} takes inputs of shape {expected}, but --data={_DATA.value} has {tuple(info.input_shape)}"
            + (f"; --image_size={expected[0]},{expected[1]} resizes the images" if _resizable(expected, info) else "")
        )
    try:
        with tempfile.TemporaryDirectory(prefix="tflite-export-") as workdir:
            # The reference file gets the same layout options, so the ratios compare like with like.
            layout = {
                "batch_size": 1 if _FIXED_BATCH.value else "auto",
                "strip_strings": _STRIP_STRINGS.value,
                "fuse_lstm": _FUSE_LSTM.value,
                "fold_time_distributed": _FOLD_TIME_DISTRIBUTED.value,
            }
            # A quantization-aware model's float reference is the same model with its
            # training layers removed (its hooks' float preparation), weights as trained.
            reference = (
                export_hooks.prepare_for_export(model, "float32")
                if export_hooks.is_quantization_aware(model)
                else model
            )
            float_path = tflite_export.convert(reference, os.path.join(workdir, "float32.tflite"), **layout)
            tflite_export.convert(
                model,
                output_path,
                mode=_MODE.value,
                representative_dataset=train if _MODE.value in ("int8", "int16x8") else None,
                inference_input_type=_IO_TYPE.value,
                inference_output_type=_IO_TYPE.value,
                allow_flex_ops=_ALLOW_FLEX.value,
                sparse_weights=_SPARSE_WEIGHTS.value,
                grid_weights_int8=_GRID_WEIGHTS_INT8.value,
                **layout,
            )
            result = tflite_export.compare(
                float_path, output_path, model, test, threads=_THREADS.value, runs=_RUNS.value, amx=_AMX.value
            )
    except tflite_export.ConversionError as err:
        print(f"{_PROGRAM}: error: {err}", file=sys.stderr)
        sys.exit(1)
    result["float32"]["path"] = None  # The reference file was temporary.
    result["mode"] = _MODE.value
    result["data"] = info.name
    if _SPARSE_WEIGHTS.value:
        check = tflite_export.sparse_inference_check(output_path)
        result["sparse_inference"] = check
        why = "; ".join(check["reasons"]) or "the file has the form its sparse kernels take"
        print(f"XNNPACK sparse inference: {'eligible' if check['eligible'] else 'not eligible'} ({why})")
    print(tflite_export.format_comparison(result))
    amx = {"granted": " (XNNPACK with Intel AMX)", "refused": " (Intel AMX refused)"}.get(
        result["optimized"]["latency"]["xnnpack"].get("amx"), ""
    )
    print(
        f"size x{result['size_ratio']:.3f}, gzip x{result['gzip_ratio']:.3f}, "
        f"latency x{result['latency_ratio']:.3f}{amx}"
    )
    if _REPORT.value:
        json_path, png_path = tflite_export.write_comparison(result, _REPORT.value)
        print(f"report: {os.path.abspath(json_path)}\nplot: {os.path.abspath(png_path)}")
    return result


def _version():
    # tflite_export ships in the kopt-keras distribution; a source tree that is not installed has no version.
    try:
        return importlib.metadata.version("kopt-keras")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (kopt-keras is not installed)"


def _resizable(expected, info):
    shape = tuple(info.input_shape)
    return len(expected) == len(shape) == 3 and None not in expected and expected[2] == shape[2]


def _image_size(text):
    """``--image_size`` as ``(height, width)``; anything but one or two sides of 1 to 8192 is a usage error."""
    parts = text.split(",")
    if len(parts) in (1, 2) and all(part.strip().isdigit() and 1 <= int(part) <= 8192 for part in parts):
        sides = [int(part) for part in parts]
        return (sides[0], sides[-1])
    _usage_error(f"--image_size={text}: must be HEIGHT,WIDTH (or one side for a square), each 1 to 8192")


def _usage_error(message):
    print(f"{_PROGRAM}: error: {message}", file=sys.stderr)
    sys.exit(2)
