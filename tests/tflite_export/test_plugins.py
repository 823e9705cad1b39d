"""Tests for tflite_export.plugins: kopt reaches tflite_export through an entry point."""

import importlib.metadata

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
