"""Where a run writes: checked before training, and a report kept even when its path fails.

A run can take hours; a bad ``export_dir`` or ``report`` path found only when
the files are written would throw all of it away. :func:`check_output_paths`
proves, before any data is loaded, that every output folder exists or can be
created and takes a new file (a real probe, so read-only mounts and full
permissions tables are both caught). :func:`write_report_or_keep` writes the
report at the end and, should that still fail (the disk filled up meanwhile),
writes it beside the trained models instead and says so.
"""

import os
import tempfile

from absl import logging

from kopt.errors import ConfigError
from kopt.errors import OutputError
from kopt.pipeline import report as report_lib

__all__ = ["check_output_paths", "check_writable_directory", "write_report_or_keep"]

# Where the report goes when its own path fails at the end of a run.
FALLBACK_REPORT = "report.json"


def check_output_paths(recipe):
    """Raises :class:`kopt.ConfigError` unless ``recipe``'s outputs can be written.

    Checks ``export_dir`` (a folder, created later if missing) and, when set,
    ``report`` (a JSON file and the PNG beside it). Creates nothing.

    Raises:
        ConfigError: Keyed ``export_dir`` or ``report``, saying what is in the way.
    """
    check_writable_directory("export_dir", recipe.export_dir)
    if recipe.report is None:
        return
    report = recipe.report
    if os.path.isdir(report):
        raise ConfigError("report", report, "is a folder; give a file path ending in .json")
    for path in (report, report_lib.png_path_for(report)):
        if os.path.exists(path) and not os.access(path, os.W_OK):
            raise ConfigError("report", report, f"{path} exists and is read-only")
    check_writable_directory("report", os.path.dirname(os.path.abspath(report)), file_value=report)


def check_writable_directory(key, directory, *, file_value=None):
    """Raises :class:`kopt.ConfigError` unless a file can be created in ``directory``.

    A missing folder is fine when its nearest existing ancestor is a folder that
    takes new entries (it will be created there). Nothing is left behind.

    Args:
        key: The setting's name, for the error.
        directory: The folder.
        file_value: When the setting is a file to go in ``directory``: that
            file, quoted in the error instead of ``directory``.
    """
    value = directory if file_value is None else file_value
    path = os.path.abspath(directory)
    subject = "" if file_value is None else f"its folder {path} "
    existing = path
    while not os.path.exists(existing):
        parent = os.path.dirname(existing)
        if parent == existing:
            break
        existing = parent
    if not os.path.isdir(existing):
        where = "is a file" if existing == path else f"would be created under {existing}, which is a file"
        raise ConfigError(key, value, f"{subject}{where}; give a path in a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".kopt-write-probe-", dir=existing)
    except OSError as err:
        reason = _why(err)
        where = "" if existing == path else f" (it would be created in {existing})"
        target = f"its folder {path}" if file_value is not None else "it"
        raise ConfigError(key, value, f"cannot create files in {target}{where}: {reason}") from err
    os.close(fd)
    os.remove(probe)


def write_report_or_keep(result, path, export_dir, *, trials=False):
    """Writes the report (JSON, PNG, and the trials PNG after a search) to ``path``.

    Adds the written paths to ``result["files"]``. If writing fails, the report
    goes to ``export_dir/report.json`` instead and :class:`kopt.OutputError` says
    where both it and the trained files are.

    Raises:
        OutputError: The report could not be written to ``path``; carries ``result``.
    """
    try:
        _write(result, path, trials)
    except OSError as err:
        kept = dict(result["files"])
        fallback = os.path.join(export_dir, FALLBACK_REPORT)
        try:
            _write(result, fallback, trials)
            where = f"the report was written to {os.path.abspath(fallback)} instead"
        except OSError as second:
            where = f"writing it to {os.path.abspath(fallback)} failed too ({_why(second)})"
        files = "; ".join(f"{name}: {value}" for name, value in kept.items())
        logging.error("Could not write the report to %s: %s.", path, _why(err))
        raise OutputError(
            f"could not write the report to {os.path.abspath(path)} ({_why(err)}); {where}. "
            f"The trained files are kept: {files}",
            report=result,
        ) from err


def _write(result, path, trials):
    json_path, png_path = report_lib.write_report(result, path)
    result["files"]["report_json"] = os.path.abspath(json_path)
    result["files"]["report_png"] = os.path.abspath(png_path)
    if trials:
        result["files"]["trials_png"] = os.path.abspath(report_lib.write_trials_png(result, path))


def _why(err):
    if isinstance(err, OSError) and err.errno is not None:
        return os.strerror(err.errno)
    return str(err)
