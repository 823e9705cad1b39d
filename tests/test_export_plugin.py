"""Tests for kopt.export_plugin: what tflite_export asks of kopt."""

import keras

from kopt import export_plugin


def test_register_layers_makes_kopt_files_loadable():
    export_plugin.register_layers()
    names = keras.saving.get_custom_objects()
    assert {"kopt>PruneLowMagnitude", "kopt>ClusterWeights", "kopt>QuantizeWrapper"} <= set(names)


def test_load_dataset_is_kopts():
    _, _, info = export_plugin.load_dataset("digits")
    assert info.name == "digits" and info.num_classes == 10
