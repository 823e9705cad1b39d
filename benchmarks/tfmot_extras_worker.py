"""tfmot's side of the extras benchmark; runs inside ``benchmarks/.venv-tfmot``.

It runs under tf_keras (``TF_USE_LEGACY_KERAS=1``), so it imports nothing of kopt;
data, float training and timed fine-tuning come from ``core``, the model and
conversion from its sibling ``tfmot_pruning_worker.py`` (this script's folder is
first on ``sys.path``). Every
setting comes from ``--settings`` (``ExtrasSettings.as_dict()``, JSON).

For one seed: train the float model, fine-tune a copy without any technique (the
step-time reference, timed before and after the rows and pooled), then

* ``m_by_n_2_4``: ``prune_low_magnitude(sparsity_m_by_n=(2, 4))``, stripped;
* ``cluster``, ``prune_cluster``, ``cluster_cqat_int8``,
  ``prune_cluster_pcqat_int8``: the rows of ``benchmarks/clustering.py`` with
  tfmot's ``cluster_weights`` (k-means++, ``preserve_sparsity`` after pruning) and
  its collaborative QAT schemes (``Default8BitClusterPreserveQuantizeScheme``),
  the QAT models converted as tfmot's guides do (``optimizations=[DEFAULT]``).
  The pruning stage uses the clustering settings' schedule (polynomial, then
  epochs at the final sparsity), and these four files get the clustering
  benchmark's layout (batch fixed at 1, strings stripped) when its settings ask.

Each row's Keras model saves its top-1 classes on the test set; scoring, sizing
and timing the files is left to the parent, which treats kopt's files alike.

Usage::

    TF_USE_LEGACY_KERAS=1 benchmarks/.venv-tfmot/bin/python \
        benchmarks/tfmot_extras_worker.py --data ../shared/data/mnist-22k.npz \
        --seed 0 --settings '{...}' --output /tmp/tfmot_seed0.json
"""

import math
import os

# Must be set before TensorFlow is imported; tfmot only works with tf_keras.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tensorflow_model_optimization as tfmot  # noqa: E402
import tfmot_pruning_worker as base  # noqa: E402
from core.data import load_arrays  # noqa: E402
from core.scoring import save_top1  # noqa: E402
from core.training import step_stats  # noqa: E402

TRAINER = base.TRAINER


def run(data, seed, settings, workdir, log):
    """Runs tfmot's rows for one seed; the result has the keys of ``extras_kopt.run``."""
    clustering = settings["clustering"]
    x_train, y_train, x_test, _ = load_arrays(data, settings.get("max_train_examples"))
    sparsity, cluster_api = tfmot.sparsity.keras, tfmot.clustering.keras

    def fit(model, epochs, learning_rate, callbacks=(), batch_size=settings["finetune_batch_size"]):
        # A one-epoch stage is timed from its first step; its median ignores tracing.
        return TRAINER.fit_timed(
            model,
            x_train,
            y_train,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            validation_split=settings["validation_split"],
            seed=seed,
            callbacks=callbacks,
            skip_epochs=1 if epochs > 1 else 0,
        )

    layout = bool(clustering.get("fixed_batch_and_stripped_strings"))

    def clustering_converter(model):
        """A converter with the file layout of kopt's clustering files: batch fixed at 1 when asked."""
        if not layout:
            return tf.lite.TFLiteConverter.from_keras_model(model)
        spec = tf.TensorSpec((1,) + tuple(model.input_shape[1:]), tf.float32)
        concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
        return tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)

    def laid_out(flatbuffer):
        """Strips the strings (names, signature) when asked, as kopt's convert(strip_strings=True) does."""
        if not layout:
            return flatbuffer
        from ai_edge_litert.tools import flatbuffer_utils

        parsed = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
        flatbuffer_utils.strip_strings(parsed)
        return bytes(flatbuffer_utils.convert_object_to_bytearray(parsed))

    def row(name, model, timer, flatbuffer):
        path = os.path.join(workdir, f"{name}.tflite")
        with open(path, "wb") as f:
            f.write(flatbuffer)
        top1_path = save_top1(model, x_test, os.path.join(workdir, f"{name}_top1.npy"))
        return {
            "file": path,
            "keras_top1": top1_path,
            "steps": step_stats(timer) if timer else None,
            "params": int(model.count_params()),
        }

    def cluster(model, preserve_sparsity, name):
        clustered = cluster_api.cluster_weights(
            model,
            number_of_clusters=clustering["number_of_clusters"],
            cluster_centroids_init=cluster_api.CentroidInitialization.KMEANS_PLUS_PLUS,
            preserve_sparsity=preserve_sparsity,
        )
        timer = fit(clustered, clustering["cluster_epochs"], clustering["cluster_learning_rate"])
        stripped = cluster_api.strip_clustering(clustered)
        rows[name] = row(name, stripped, timer, laid_out(clustering_converter(stripped).convert()))
        return stripped

    def collaborative_qat(model, preserve_sparsity, name):
        scheme = tfmot.experimental.combine.Default8BitClusterPreserveQuantizeScheme(
            preserve_sparsity=preserve_sparsity
        )
        annotated = tfmot.quantization.keras.quantize_annotate_model(model)
        quantized = tfmot.quantization.keras.quantize_apply(annotated, scheme)
        timer = fit(quantized, clustering["qat_epochs"], clustering["qat_learning_rate"])
        converter = clustering_converter(quantized)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        rows[name] = row(name, quantized, timer, laid_out(converter.convert()))

    def plain_finetune():
        return fit(TRAINER.copy_of(dense), settings["finetune_epochs"], settings["learning_rate"])

    log(f"tfmot extras seed {seed}: float training, {settings['dense_epochs']} epochs")
    dense = TRAINER.train_dense(x_train, y_train, settings, seed, base.build_model)
    rows = {"float32": row("float32", dense, None, base.to_tflite(dense, "float32", None))}
    log(f"tfmot extras seed {seed}: plain fine-tuning (step-time reference)")
    plain_timer = plain_finetune()

    log(f"tfmot extras seed {seed}: 2:4 pruning")
    schedule = sparsity.ConstantSparsity(0.5, begin_step=0, frequency=settings["mask_frequency"])
    m_by_n = sparsity.prune_low_magnitude(TRAINER.copy_of(dense), pruning_schedule=schedule, sparsity_m_by_n=(2, 4))
    timer = fit(m_by_n, settings["finetune_epochs"], settings["learning_rate"], [sparsity.UpdatePruningStep()])
    stripped = sparsity.strip_pruning(m_by_n)
    rows["m_by_n_2_4"] = row("m_by_n_2_4", stripped, timer, base.to_tflite(stripped, "float32", None))

    log(f"tfmot extras seed {seed}: clustering, then CQAT")
    clustered = cluster(TRAINER.copy_of(dense), False, "cluster")
    collaborative_qat(clustered, False, "cluster_cqat_int8")
    log(f"tfmot extras seed {seed}: pruning, clustering, then PCQAT")
    steps_per_epoch = math.ceil(len(x_train) * (1 - settings["validation_split"]) / clustering["prune_batch_size"])
    schedule = sparsity.PolynomialDecay(
        initial_sparsity=clustering["prune_initial_sparsity"],
        final_sparsity=clustering["target_sparsity"],
        begin_step=0,
        end_step=steps_per_epoch * clustering["prune_end_epochs"] - 1,
        frequency=clustering["prune_frequency"],
    )
    pruned = sparsity.prune_low_magnitude(TRAINER.copy_of(dense), pruning_schedule=schedule)
    prune_timer = fit(
        pruned,
        clustering["prune_epochs"],
        clustering["prune_learning_rate"],
        [sparsity.UpdatePruningStep()],
        batch_size=clustering["prune_batch_size"],
    )
    pruned_clustered = cluster(sparsity.strip_pruning(pruned), True, "prune_cluster")
    rows["prune_cluster"]["prune_steps"] = step_stats(prune_timer)
    collaborative_qat(pruned_clustered, True, "prune_cluster_pcqat_int8")

    # Timed again after the rows and pooled, so a change in machine load during
    # the run weighs on both sides of the ratio.
    log(f"tfmot extras seed {seed}: plain fine-tuning again (step-time reference)")
    plain_timer.extend(plain_finetune())
    return {"rows": rows, "plain_finetune": step_stats(plain_timer)}


if __name__ == "__main__":
    base.main(run_seed=run, description=__doc__.splitlines()[0])
