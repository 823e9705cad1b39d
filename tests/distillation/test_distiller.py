"""Distiller: the loss it minimizes, what it trains and freezes, checks, saving, pruned and QAT students."""

import keras
import numpy as np
import pytest

import tflite_export
from kopt import pruning
from kopt import quantization
from kopt.distillation import Distiller
from kopt.testing import run_model_saving_test
from kopt.testing import run_serialization_test

NUM_CLASSES = 3


def _classifier(width, *, seed, batch_norm=False, name=None):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Conv2D(width, 3, name="conv")(inputs)
    if batch_norm:
        x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(NUM_CLASSES, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def _data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 6, 6, 1)).astype("float32"), rng.integers(0, NUM_CLASSES, size=n)


def _numpy_loss(student_logits, teacher_logits, labels, alpha, temperature):
    def log_softmax(z):
        z = z - z.max(axis=-1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))

    hard = -log_softmax(student_logits)[np.arange(len(labels)), labels].mean()
    log_p = log_softmax(teacher_logits / temperature)
    log_q = log_softmax(student_logits / temperature)
    soft = (np.exp(log_p) * (log_p - log_q)).sum(axis=-1).mean() * temperature**2
    return alpha * hard + (1 - alpha) * soft, hard, soft


@pytest.mark.parametrize("run_eagerly", [False, True])
def test_reported_losses_are_hinton_loss_of_the_batch(run_eagerly):
    student, teacher = _classifier(2, seed=1), _classifier(8, seed=2)
    x, y = _data()
    expected = _numpy_loss(keras.ops.convert_to_numpy(student(x)), keras.ops.convert_to_numpy(teacher(x)), y, 0.3, 3.0)
    distiller = Distiller(student, teacher, alpha=0.3, temperature=3.0)
    # A zero learning rate: the logged losses are those of the weights above.
    distiller.compile(keras.optimizers.SGD(0.0), run_eagerly=run_eagerly)
    logs = distiller.fit(x, y, batch_size=32, epochs=1, verbose=0).history
    np.testing.assert_allclose(
        [logs["loss"][0], logs["student_loss"][0], logs["distillation_loss"][0]], expected, rtol=1e-5
    )


def test_hard_distillation_is_cross_entropy_against_the_teachers_arg_max():
    student, teacher = _classifier(2, seed=1), _classifier(8, seed=2)
    x, y = _data()
    student_logits, teacher_logits = (keras.ops.convert_to_numpy(m(x)) for m in (student, teacher))
    teacher_labels = teacher_logits.argmax(axis=-1)
    assert (teacher_labels != y).any()  # the two kinds of labels differ, so the test can fail
    hard_on_labels = _numpy_loss(student_logits, teacher_logits, y, 1.0, 1.0)[0]
    hard_on_teacher = _numpy_loss(student_logits, teacher_logits, teacher_labels, 1.0, 1.0)[0]
    distiller = Distiller(student, teacher, alpha=0.3, temperature=7.0, distillation="hard")
    distiller.compile(keras.optimizers.SGD(0.0))
    logs = distiller.fit(x, y, batch_size=32, epochs=1, verbose=0).history
    np.testing.assert_allclose(logs["student_loss"][0], hard_on_labels, rtol=1e-5)
    np.testing.assert_allclose(logs["distillation_loss"][0], hard_on_teacher, rtol=1e-5)  # T plays no part
    np.testing.assert_allclose(logs["loss"][0], 0.3 * hard_on_labels + 0.7 * hard_on_teacher, rtol=1e-5)
    restored = run_serialization_test(distiller, init_kwargs={"distillation": "hard"})
    assert restored.distillation == "hard"


def test_keras_kl_divergence_as_distillation_loss_gives_the_same_loss():
    x, y = _data()
    results = []
    for loss_fn in (None, "kl_divergence"):
        distiller = Distiller(_classifier(2, seed=1), _classifier(8, seed=2), distillation_loss_fn=loss_fn)
        distiller.compile(keras.optimizers.SGD(0.0))
        results.append(distiller.fit(x, y, batch_size=32, verbose=0).history["distillation_loss"][0])
    np.testing.assert_allclose(results[0], results[1], rtol=1e-4)
    assert results[0] > 0


def test_trains_only_the_student_and_keeps_its_state_updates():
    student = _classifier(2, seed=1, batch_norm=True, name="student")
    teacher = _classifier(8, seed=2, batch_norm=True, name="teacher")
    teacher_before = [np.array(w) for w in teacher.get_weights()]
    student_before = {w.path: w.numpy() for w in student.weights}
    distiller = Distiller(student, teacher)
    distiller.compile(keras.optimizers.Adam(0.05), metrics=["accuracy"])
    x, y = _data()
    history = distiller.fit(x, y, batch_size=8, epochs=2, verbose=0).history
    assert set(history) == {"loss", "student_loss", "distillation_loss", "accuracy"}
    # Teacher weights, BatchNormalization statistics included, are untouched.
    for before, after in zip(teacher_before, teacher.get_weights()):
        np.testing.assert_array_equal(before, after)
    # The teacher is not trained, yet its own flag is left alone for later use.
    assert teacher.trainable
    assert {id(w) for w in distiller.trainable_weights} == {id(w) for w in student.trainable_weights}
    assert {id(w) for w in teacher.weights} <= {id(w) for w in distiller.non_trainable_weights}
    changed = {w.path for w in student.weights if not np.array_equal(student_before[w.path], w.numpy())}
    assert {w.path for w in student.trainable_weights} <= changed
    assert any("moving_mean" in path for path in changed)  # non-trainable updates ran
    assert history["loss"][-1] < history["loss"][0]


def test_graph_and_eager_training_agree():
    x, y = _data()
    weights = []
    for run_eagerly in (False, True):
        distiller = Distiller(_classifier(2, seed=1), _classifier(8, seed=2), alpha=0.2)
        distiller.compile(keras.optimizers.SGD(0.1), run_eagerly=run_eagerly)
        distiller.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        weights.append(distiller.student.get_weights())
    for graph, eager in zip(*weights):
        np.testing.assert_allclose(graph, eager, rtol=1e-5, atol=1e-6)


def test_evaluate_and_predict_use_the_student():
    student, teacher = _classifier(2, seed=1), _classifier(8, seed=2)
    distiller = Distiller(student, teacher)
    distiller.compile(metrics=["accuracy"])
    x, y = _data()
    results = distiller.evaluate(x, y, return_dict=True, verbose=0)
    assert set(results) == {"loss", "student_loss", "accuracy"}
    student.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    expected = student.evaluate(x, y, return_dict=True, verbose=0)
    np.testing.assert_allclose(results["loss"], expected["loss"], rtol=1e-5)
    np.testing.assert_allclose(results["accuracy"], expected["accuracy"])
    np.testing.assert_allclose(distiller.predict(x, verbose=0), student.predict(x, verbose=0))


def test_swapped_models_are_refused():
    small, large = _classifier(2, seed=1), _classifier(8, seed=2)
    with pytest.raises(ValueError, match="were they swapped"):
        Distiller(large, small)
    assert Distiller(large, small, allow_larger_student=True).student is large


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"alpha": 1.5}, "alpha=1.5"),
        ({"temperature": 0}, "temperature=0"),
        ({"feature_weight": -1.0}, "feature_weight=-1.0"),
        ({"feature_layers": ["conv"]}, "feature_layers="),
        ({"distillation": "medium"}, "distillation='medium'"),
        ({"distillation": "hard", "distillation_loss_fn": "kl_divergence"}, "distillation_loss_fn="),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Distiller(_classifier(2, seed=1), _classifier(8, seed=2), **kwargs)


def test_unusable_models_are_refused():
    teacher = _classifier(8, seed=2)
    with pytest.raises(ValueError, match="same model"):
        Distiller(teacher, teacher)
    softmax = keras.Model(teacher.inputs, keras.layers.Softmax()(teacher.outputs[0]))
    with pytest.raises(ValueError, match="softmax"):
        Distiller(_classifier(2, seed=1), softmax)
    inputs = keras.Input((6, 6, 1))
    four_classes = keras.Model(inputs, keras.layers.Dense(4)(keras.layers.Flatten()(inputs)))
    with pytest.raises(ValueError, match="same classes"):
        Distiller(four_classes, teacher)
    with pytest.raises(ValueError, match="must be built"):
        Distiller(keras.Sequential([keras.layers.Dense(3)]), teacher)
    frozen = _classifier(2, seed=1, name="frozen")
    frozen.trainable = False
    with pytest.raises(ValueError, match="student='frozen' with trainable=False"):
        Distiller(frozen, teacher)
    distiller = Distiller(_classifier(2, seed=1), teacher)
    with pytest.raises(ValueError, match="student_loss_fn"):
        distiller.compile("adam", loss="mse")
    x, y = _data(8)
    distiller.compile("adam")
    with pytest.raises(ValueError, match="exactly the keys"):
        distiller.fit(x, {"labels": y, "logits": np.zeros((8, 3))}, verbose=0)


def test_distiller_and_student_save_and_load(tmp_path):
    student, teacher = _classifier(2, seed=1), _classifier(8, seed=2, batch_norm=True)
    distiller = Distiller(student, teacher, alpha=0.2, temperature=5.0, distillation_loss_fn="kl_divergence")
    run_serialization_test(distiller, init_kwargs={"alpha": 0.2, "temperature": 5.0, "allow_larger_student": False})
    distiller.compile("adam", metrics=["accuracy"])
    x, y = _data()
    distiller.fit(x, y, batch_size=16, verbose=0)
    loaded = run_model_saving_test(distiller, x)
    assert {id(w) for w in loaded.trainable_weights} == {id(w) for w in loaded.student.trainable_weights}
    # The optimizer state (the student's slots only) came back whole.
    for saved, restored in zip(distiller.optimizer.variables, loaded.optimizer.variables, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(saved), keras.ops.convert_to_numpy(restored))
    np.testing.assert_allclose(loaded.teacher.predict(x, verbose=0), teacher.predict(x, verbose=0), rtol=1e-6)
    loaded.fit(x, y, batch_size=16, verbose=0)  # the compiled state came back too
    run_model_saving_test(distiller.student, x)


def test_pruned_student_prunes_strips_and_exports_int8(tmp_path):
    schedule = pruning.ConstantSparsity(0.5, begin_step=0, frequency=1)
    student = pruning.prune_low_magnitude(_classifier(4, seed=1), pruning_schedule=schedule)
    distiller = Distiller(student, _classifier(16, seed=2))
    distiller.compile("adam")
    x, y = _data()
    distiller.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[pruning.UpdatePruningStep()])
    stripped = pruning.strip_pruning(distiller.student)
    kernel = stripped.get_layer("conv").kernel.numpy()
    np.testing.assert_allclose(np.mean(kernel == 0), 0.5, atol=0.03)
    path = tflite_export.convert(stripped, str(tmp_path / "pruned.tflite"), mode="int8", representative_dataset=x)
    assert tflite_export.is_fully_integer(tflite_export.inspect(path))[0]


def test_qat_student_learns_ranges_and_exports_int8(tmp_path):
    student = quantization.quantize_model(_classifier(4, seed=1))
    distiller = Distiller(student, _classifier(16, seed=2))
    ranges = [w for w in student.non_trainable_weights if w.name.endswith(("_min", "_max"))]
    before = [w.numpy().copy() for w in ranges]
    distiller.compile("adam")
    x, y = _data()
    distiller.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert ranges and any(not np.array_equal(b, w.numpy()) for b, w in zip(before, ranges))
    path = tflite_export.convert(student, str(tmp_path / "qat.tflite"), mode="int8")
    assert tflite_export.is_fully_integer(tflite_export.inspect(path))[0]
    outputs = tflite_export.predict(path, x)
    agreement = np.mean(np.argmax(outputs, -1) == np.argmax(student.predict(x, verbose=0), -1))
    assert agreement >= 0.9
