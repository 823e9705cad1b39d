"""``kopt-optimize`` run inside the test process, for the many cases that must be refused before any work.

Each subprocess of the console script paid about 4.5 s to import TensorFlow and Keras before it
read a flag, and the suite runs about a hundred such refusals. In process, the same entry point
(:func:`kopt.cli.optimize.run_app`, what the console script calls) parses the same flags and
prints the same line; training is made to fail loudly, so a case that is not refused before
training cannot pass. The console script itself keeps its own subprocess tests
(``test_optimize.py``: a bad flag, ``--verbosity=1``, every real run).
"""

import contextlib
import io
import logging as std_logging
import os
import signal
import subprocess

from absl import flags

__all__ = ["is_refused", "refused"]


def refused(args, cwd, monkeypatch):
    """Runs ``kopt-optimize args`` in ``cwd`` in this process; returns a ``CompletedProcess``.

    Any training raises ``AssertionError`` (the run was meant to be refused first).
    Flags, the working directory, signal handlers and log levels are restored after.
    """
    from kopt.cli import optimize
    from kopt.pipeline import execution

    def no_training(*unused_args, **unused_kwargs):
        raise AssertionError(f"kopt-optimize {' '.join(args)} started training instead of refusing its input")

    monkeypatch.setattr(execution, "train_classifier", no_training)
    handlers = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    tensorflow_level = std_logging.getLogger("tensorflow").level
    stdout, stderr = io.StringIO(), io.StringIO()
    code = 0
    with monkeypatch.context() as patch:
        patch.chdir(cwd)
        try:
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                optimize.run_app(["kopt-optimize", *args])
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        finally:
            flags.FLAGS.unparse_flags()
            for number, handler in handlers.items():
                signal.signal(number, handler)
            std_logging.getLogger("tensorflow").setLevel(tensorflow_level)
    return subprocess.CompletedProcess(["kopt-optimize", *args], code, stdout.getvalue(), stderr.getvalue())


def is_refused(result, expected, tmp_path, export_dir="kopt_export"):
    """Asserts ``result`` is one ``kopt-optimize: error:`` line containing ``expected``, exit 2, no export folder."""
    assert result.returncode == 2, (result.stdout[-2000:], result.stderr[-2000:])
    errors = [line for line in result.stderr.splitlines() if line.startswith("kopt-optimize: error:")]
    assert len(errors) == 1, result.stderr[-2000:]
    assert expected.format(tmp=tmp_path) in errors[0], errors[0]
    assert len(errors[0]) < 600
    assert not os.path.exists(os.path.join(tmp_path, export_dir))
    return errors[0]
