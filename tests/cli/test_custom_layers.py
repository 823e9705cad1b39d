"""``--custom_layers``: a model with the user's own layers loads in kopt-optimize, and a missing one says how."""

from kopt.pipeline import Recipe
from kopt.pipeline import TechniqueSpec
from kopt.pipeline import run
from tests.cli.in_process import is_refused
from tests.cli.in_process import refused
from tests.tflite_export.test_plugins import _saved_with_unregistered_layer


def test_a_model_with_an_unregistered_layer_is_refused_with_the_flag_that_loads_it(tmp_path, monkeypatch):
    _saved_with_unregistered_layer(tmp_path, "clipkg")
    result = refused(["--model=m.keras", "--epochs=0"], tmp_path, monkeypatch)
    is_refused(result, "'Halve' (saved from module 'clipkg_layers') is not registered", tmp_path)
    assert "import it with --custom_layers=clipkg_layers" in result.stderr
    result = refused(["--init_from=m.keras", "--epochs=1"], tmp_path, monkeypatch)  # the same load, the same hint
    is_refused(result, "--init_from=m.keras: not a loadable Keras model file (layer class 'Halve'", tmp_path)
    result = refused(["--model=m.keras", "--custom_layers=absent_layers,x.py"], tmp_path, monkeypatch)
    is_refused(result, "--custom_layers=absent_layers,x.py: no module 'absent_layers'", tmp_path)


def test_custom_layers_are_imported_before_the_model_loads_and_the_run_exports(tmp_path):
    path = _saved_with_unregistered_layer(tmp_path, "runpkg")
    report = run(
        Recipe(
            model=str(tmp_path / "m.keras"),
            dataset="npz:" + _vectors(tmp_path),
            custom_layers=[str(path)],
            epochs=0,
            export_dir=str(tmp_path / "out"),
            techniques=(TechniqueSpec("ptq", {"mode": "dynamic"}),),
        )
    )
    assert report["recipe"]["custom_layers"] == [str(path)] and report["baseline"]["tflite_agreement"] == 1.0


def _vectors(tmp_path):
    """(N, 4) features of two classes, what the test model reads."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    np.savez(tmp_path / "v.npz", x_train=x[:30], y_train=y[:30], x_test=x[30:], y_test=y[30:])
    return str(tmp_path / "v.npz")
