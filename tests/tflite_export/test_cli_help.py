"""--help and --version of kopt-optimize and python -m tflite_export: their own flags, grouped, exit 0."""

import os
import subprocess
import sys

import pytest
from absl import flags

from kopt.cli import help as optimize_help
from tflite_export import cli_help

SCRIPT = os.path.join(os.path.dirname(sys.executable), "kopt-optimize")


def test_every_kopt_optimize_flag_is_in_a_group():
    import kopt.cli.optimize  # noqa: F401 - defines the flags

    grouped = {name for _, names in optimize_help.OPTIMIZE_GROUPS for name in names}
    assert set(cli_help.package_flags(flags.FLAGS)) == grouped


def test_help_and_version_arguments_are_recognized():
    assert cli_help.wants_help(["p", "-h"]) and cli_help.wants_help(["p", "--helpshort"])
    assert not cli_help.wants_help(["--help"])  # argv[0] is the program
    assert cli_help.wants_version(["p", "--version"]) and not cli_help.wants_version(["p"])


@pytest.mark.parametrize(
    "command, expected",
    [
        ([SCRIPT, "--help"], ["Pruning:", "  --prune (default: none)", "Quantization:", "  --ptq_calibration"]),
        (
            [sys.executable, "-m", "tflite_export", "--help"],
            ["Conversion:", "  --mode (default: 'int8')", "--fuse_lstm"],
        ),
    ],
)
def test_help_lists_the_programs_own_flags_and_exits_0(command, expected):
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    for text in expected:
        assert text in result.stdout
    assert "absltest" not in result.stdout and "--tpu_" not in result.stdout  # no other library's flags


@pytest.mark.parametrize("command", [[SCRIPT, "--version"], [sys.executable, "-m", "tflite_export", "--version"]])
def test_version(command):
    from kopt.version import __version__

    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip().endswith(__version__), result.stderr[-2000:]
