"""Tests for tflite_export.plugins: kopt reaches tflite_export through an entry point."""

import importlib.metadata

import pytest

import tflite_export
from tflite_export import plugins


def test_kopt_is_an_installed_plugin_that_provides_layers_and_data():
    entries = {entry.name: entry.value for entry in importlib.metadata.entry_points(group=plugins.GROUP)}
    assert entries.get("kopt") == "kopt.export_plugin"
    loader = plugins.dataset_loader()
    train, test, info = loader("digits")
    assert info.input_shape == (8, 8, 1)


def test_added_plugin_is_asked_after_the_installed_ones():
    calls = []

    class Plugin:
        @staticmethod
        def register_layers():
            calls.append("registered")

    plugins.add_plugin(Plugin)
    try:
        plugins.register_layers()
        assert calls == ["registered"] and plugins.loaded_plugins()[-1] is Plugin
    finally:
        plugins._ADDED.remove(Plugin)


def test_a_plugin_without_either_attribute_is_refused():
    import pytest

    with pytest.raises(TypeError, match="register_layers, load_dataset or both"):
        plugins.add_plugin(object())


_LAYER_MODULE = """
import keras


@keras.saving.register_keras_serializable(package="{package}")
class Halve(keras.layers.Layer):
    def call(self, x):
        return x * 0.5
"""


def _saved_with_unregistered_layer(tmp_path, package):
    """A model saved with a user's layer, then that layer forgotten, as in a fresh process."""
    import sys

    import keras

    path = tmp_path / f"{package}_layers.py"
    path.write_text(_LAYER_MODULE.format(package=package))
    plugins.import_user_modules([str(path)])
    module = sys.modules[f"{package}_layers"]
    model = keras.Sequential([keras.Input((4,)), module.Halve(name="halve"), keras.layers.Dense(2)])
    model.save(tmp_path / "m.keras")
    del keras.saving.get_custom_objects()[f"{package}>Halve"]
    del sys.modules[f"{package}_layers"]
    return path


def test_a_users_layer_module_is_imported_by_file_or_by_name_and_the_model_loads(tmp_path, monkeypatch):
    import keras

    path = _saved_with_unregistered_layer(tmp_path, "userpkg")
    with pytest.raises(ValueError, match=r"'Halve' \(saved from module 'userpkg_layers'\) is not registered.*"
                                         r"--custom_layers=userpkg_layers"):  # fmt: skip
        tflite_export.converter.load_model(tmp_path / "m.keras")
    assert plugins.import_user_modules([str(path)]) == ["userpkg_layers"]
    assert keras.models.load_model(tmp_path / "m.keras").get_layer("halve").__class__.__name__ == "Halve"
    # By module name, found in the current directory as a console script run there would need it.
    _saved_with_unregistered_layer(tmp_path, "bynamepkg")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", [entry for entry in __import__("sys").path if entry not in ("", str(tmp_path))])
    assert plugins.import_user_modules(["bynamepkg_layers"]) == ["bynamepkg_layers"]
    assert tflite_export.converter.load_model(tmp_path / "m.keras").layers[0].name == "halve"


def test_a_module_that_is_missing_or_fails_is_named(tmp_path):
    with pytest.raises(ValueError, match="file not found: .*absent.py"):
        plugins.import_user_modules([str(tmp_path / "absent.py")])
    with pytest.raises(ValueError, match="no module 'no_such_module_here' on the Python path or in"):
        plugins.import_user_modules(["no_such_module_here"])
    broken = tmp_path / "broken_layers.py"
    broken.write_text("raise RuntimeError('needs a GPU driver')\n")
    with pytest.raises(ValueError, match=r"importing '.*broken_layers.py' failed \(RuntimeError: needs a GPU driver\)"):
        plugins.import_user_modules([str(broken)])
    assert "broken_layers" not in __import__("sys").modules
    with pytest.raises(ValueError, match="a module name or .py file path is needed"):
        plugins.import_user_modules([""])


def test_the_module_examples_run():
    import doctest

    assert doctest.testmod(plugins).failed == 0
