"""The kopt-keras wheel: its metadata, its files, and installing it beside a user's TensorFlow."""

import email.parser
import importlib.metadata
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
# What the build reads; copied so the test builds from a clean tree and leaves the clone alone.
_SOURCES = ("pyproject.toml", "setup.py", "README.md", "LICENSE", "kopt", "tflite_export")


def _build_wheel(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name in _SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(path, source / name)
    out = tmp_path / "dist"
    env = {key: value for key, value in os.environ.items() if key != "KOPT_TENSORFLOW"}
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(source)],
        check=True, env=env, capture_output=True, text=True,
    )  # fmt: skip
    (wheel,) = out.glob("*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    return _build_wheel(tmp_path_factory.mktemp("wheel"))


def _metadata(wheel):
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(archive.read(name).decode())


def test_wheel_never_requires_tensorflow_unconditionally(wheel):
    requirements = _metadata(wheel).get_all("Requires-Dist")
    tensorflow = [r for r in requirements if r.split(";")[0].strip().lower().startswith(("tensorflow", "tf-"))]
    assert tensorflow, requirements
    unconditional = [r for r in tensorflow if "extra ==" not in r]
    assert unconditional == [], unconditional
    cpu = [r for r in tensorflow if 'extra == "cpu"' in r]
    assert any(r.startswith("tensorflow-cpu<2.22,>=2.19") for r in cpu), cpu
    assert any(r.startswith("tensorflow[and-cuda]<2.22,>=2.19") and 'extra == "and-cuda"' in r for r in tensorflow)


def test_wheel_metadata_names_a_free_distribution_license_and_optional_extras(wheel):
    metadata = _metadata(wheel)
    assert metadata["Name"] == "kopt-keras"  # "kopt" on the package index is an unrelated project
    assert metadata["License-Expression"] == "Apache-2.0"
    assert set(metadata.get_all("Provides-Extra")) >= {"cpu", "and-cuda", "datasets", "tune", "all", "test"}
    unconditional = [r.split(";")[0] for r in metadata.get_all("Requires-Dist") if "extra ==" not in r]
    names = {r.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip() for r in unconditional}
    # The heavy optional dependencies are extras; scikit-learn is not needed at all.
    assert names.isdisjoint({"tensorflow-datasets", "keras-tuner", "scikit-learn"}), names


def test_wheel_carries_license_type_markers_embedded_data_and_console_script(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(archive.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert {"kopt/py.typed", "tflite_export/py.typed", "kopt/data/digits.npz"} <= names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert not any(n.startswith(("tests/", "benchmarks/", "examples/")) for n in names)
    assert "kopt-optimize = kopt.cli.entry:main" in entry_points


def test_old_tensorflow_switch_is_refused_not_ignored(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "setup.py"), "--name"], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "KOPT_TENSORFLOW": "tensorflow"}, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "KOPT_TENSORFLOW is no longer read" in result.stderr and "'tensorflow'" in result.stderr


def _tensorflow_version():
    (version,) = {importlib.metadata.version(name) for name in ("tensorflow", "tensorflow-cpu") if _installed(name)}
    return version


def _installed(name):
    try:
        importlib.metadata.version(name)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


@pytest.mark.slow
def test_installing_beside_an_existing_tensorflow_keeps_exactly_that_one(wheel, tmp_path):
    # The user's machine: a virtual environment that already has the standard
    # `tensorflow` wheel (the one GPU and TPU users have). Installing kopt must not
    # add tensorflow-cpu beside it. pip's cache makes reruns of this fast.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, f"tensorflow=={_tensorflow_version()}"], check=True, capture_output=True, text=True)
    subprocess.run([*pip, str(wheel)], check=True, capture_output=True, text=True)
    listing = subprocess.run(
        [python, "-m", "pip", "list", "--format=freeze"], check=True, capture_output=True, text=True
    )
    tensorflows = sorted(
        line.split("==")[0].lower() for line in listing.stdout.splitlines()
        if line.split("==")[0].lower().replace("_", "-") in ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tf-nightly")
    )  # fmt: skip
    assert tensorflows == ["tensorflow"], listing.stdout
    check = "import kopt, tensorflow as tf; import kopt.pruning; print(tf.__version__, kopt.__version__)"
    result = subprocess.run([python, "-c", check], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Several TensorFlow distributions" not in result.stderr
    version = subprocess.run(
        [str(venv / "bin" / "kopt-optimize"), "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.strip().endswith(result.stdout.split()[1])
