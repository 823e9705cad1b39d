"""Native log noise is dropped from standard error; everything else passes through."""

import subprocess
import sys

import pytest

from tflite_export import native_logs


@pytest.mark.parametrize(
    "line",
    [
        "I0000 00:00:1796411437.526687    5642 port.cc:153] oneDNN custom operations are on. You may see ...",
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "E0000 00:00:1 node_def_util.cc:682] NodeDef mentions attribute use_unbounded_threadpool which is not",
        "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
        "fully_quantize: 0, inference_type: 6, input_inference_type: FLOAT32, output_inference_type: FLOAT32",
    ],
)
def test_known_noise_is_recognized(line):
    assert native_logs.is_noise(line)


@pytest.mark.parametrize(
    "line",
    [
        "I1204 19:17:54.254865 1 execution.py:79] Dataset digits: scikit-learn bundled UCI handwritten digits",
        "kopt-optimize: error: --prune=2.0: must be a fraction in (0, 1), e.g. 0.8",
        "Traceback (most recent call last):",
        "E0000 00:00:1 some_kernel.cc:1] Out of memory while allocating",
    ],
)
def test_everything_else_passes(line):
    assert not native_logs.is_noise(line)


@pytest.mark.parametrize(
    "argv, verbose",
    [
        (["p"], False),
        (["p", "--verbosity=1"], True),
        (["p", "--verbosity", "2"], True),
        (["p", "-v=0"], False),
        (["p", "--verbosity=-1"], False),
    ],
)
def test_wants_verbose(argv, verbose):
    assert native_logs.wants_verbose(argv) is verbose


def test_filter_drops_noise_written_below_python_and_keeps_the_rest_in_order():
    code = (
        "import os, sys\n"
        "from tflite_export import native_logs\n"
        "native_logs.hide_native_noise()\n"
        "os.write(2, b'INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\nfirst real line\\n')\n"
        "print('second real line', file=sys.stderr)\n"
        "os.write(2, b'fully_quantize: 0, inference_type: 6, x\\nlast line without newline')\n"
        "raise SystemExit(3)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 3
    assert result.stderr == "first real line\nsecond real line\nlast line without newline"
