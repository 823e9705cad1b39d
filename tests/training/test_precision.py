"""Mixed precision: the policy is scoped, kopt's variables stay float32, exports are float32."""

import keras
import numpy as np
import pytest

import tflite_export
from kopt import ConfigError
from kopt import pruning
from kopt.training import precision_policy
from kopt.training import to_float32


def _model():
    return keras.Sequential(
        [
            keras.Input((6, 6, 1)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(3),
        ]
    )


def test_policy_applies_inside_the_block_and_is_restored():
    with precision_policy("mixed_float16"):
        assert keras.mixed_precision.global_policy().name == "mixed_float16"
        with pytest.raises(RuntimeError):
            with precision_policy("none"):
                assert keras.mixed_precision.global_policy().name == "float32"
                raise RuntimeError("restored even on error")
        assert keras.mixed_precision.global_policy().name == "mixed_float16"
    assert keras.mixed_precision.global_policy().name == "float32"
    with pytest.raises(ConfigError, match="mixed_precision=float8"):
        with precision_policy("float8"):
            pass


def test_float32_model_is_returned_as_is():
    model = _model()
    assert to_float32(model) is model


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_pruning_under_mixed_precision_keeps_kopt_state_float32_and_exports_the_same_file(tmp_path, policy):
    keras.utils.set_random_seed(0)
    x = np.random.rand(32, 6, 6, 1).astype("float32")
    y = np.random.randint(0, 3, 32)
    with precision_policy(policy):
        pruned = pruning.prune_low_magnitude(_model(), pruning_schedule=pruning.ConstantSparsity(0.5, 0, frequency=1))
        pruned.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        pruned.fit(x, y, epochs=1, batch_size=8, callbacks=[pruning.UpdatePruningStep()], verbose=0)
    assert pruned.layers[0].compute_dtype != "float32"
    state = {v.path.split("/")[-1]: v.dtype for v in pruned.variables if not v.trainable}
    assert state["kernel_mask"] == "float32" and state["kernel_threshold"] == "float32"
    assert state["pruning_step"].startswith("int")
    assert all(v.dtype == "float32" for v in pruned.trainable_variables)
    stripped = pruning.strip_pruning(pruned)
    converted = to_float32(stripped)
    assert all(layer.compute_dtype == "float32" for layer in converted.layers)
    # The same weights in a model that never saw mixed precision export to the
    # same file, up to the layer names inside it.
    reference = _model()
    reference.set_weights(stripped.get_weights())
    files = [str(tmp_path / "mixed.tflite"), str(tmp_path / "float.tflite")]
    tflite_export.convert(converted, files[0])
    tflite_export.convert(reference, files[1])
    mixed, plain = (tflite_export.inspect(path) for path in files)
    assert mixed["parameters"] == plain["parameters"]
    assert [op["op"] for op in mixed["ops"]] == [op["op"] for op in plain["ops"]]
    dtypes = {t["dtype"] for t in mixed["tensors"]}
    assert "float32" in dtypes and not dtypes & {"float16", "bfloat16"}
    for ours, theirs in zip(mixed["tensors"], plain["tensors"]):
        assert (ours["dtype"], ours["shape"], ours["zeros"]) == (theirs["dtype"], theirs["shape"], theirs["zeros"])
    np.testing.assert_array_equal(tflite_export.predict(files[0], x), tflite_export.predict(files[1], x))


def test_clustering_under_mixed_precision_keeps_centroids_float32():
    from kopt import clustering

    with precision_policy("mixed_float16"):
        clustered = clustering.cluster_weights(_model(), 4)
        clustered.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        clustered.fit(np.random.rand(8, 6, 6, 1).astype("float32"), np.zeros(8), epochs=1, verbose=0)
    dtypes = {v.path.split("/")[-1]: v.dtype for v in clustered.variables}
    assert dtypes["kernel_cluster_centroids"] == "float32" and dtypes["kernel_pulling_indices"] == "int32"
    assert clustered.layers[0].compute_dtype == "float16"
