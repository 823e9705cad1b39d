"""tfmot's side of the CIFAR-10 suite; runs inside ``benchmarks/.venv-tfmot``.

It runs under tf_keras (``TF_USE_LEGACY_KERAS=1``), so it imports nothing of kopt;
the networks and the training recipe come from its siblings ``cifar_models.py``
and ``cifar_training.py`` (kopt's side uses the same files), the conversion and
command line from ``tfmot_pruning_worker.py`` (this script's folder is first on
``sys.path``). Every setting comes from ``--settings`` (``CifarSettings.as_dict()``).

For one seed and each network it trains the float model, then the rows tfmot has
(``cifar_settings.TECHNIQUES`` less structured pruning and distillation):
the converter's PTQ int8, ``quantize_model`` QAT converted as tfmot's guide does
(``optimizations=[DEFAULT]``), ``prune_low_magnitude`` at 50/80/90% and 2:4,
``cluster_weights`` (k-means++), and pruning, clustering with
``preserve_sparsity`` and PCQAT (``Default8BitClusterPreserveQuantizeScheme``).
A row that raises is recorded with its error. Scoring, sizes and latency are left
to the parent, which treats kopt's files with the same code.

Usage::

    TF_USE_LEGACY_KERAS=1 benchmarks/.venv-tfmot/bin/python benchmarks/tfmot_cifar_worker.py \
        --data ../shared/data/cifar10-15k.npz --seed 0 --settings '{...}' --output /tmp/tfmot_seed0.json
"""

import os

# Must be set before TensorFlow is imported; tfmot only works with tf_keras.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cifar_models  # noqa: E402
import cifar_training  # noqa: E402
import tensorflow_model_optimization as tfmot  # noqa: E402
import tfmot_pruning_worker as base  # noqa: E402
import tfmot_quantization_worker as quantization_worker  # noqa: E402
from core.data import load_arrays  # noqa: E402
from core.scoring import save_top1  # noqa: E402

# Rows tfmot has no counterpart for.
KOPT_ONLY = (
    "float32_continued",
    "structured_30",
    "structured_50",
    "structured_latency",
    "structured_50_scratch",
    "distill",
)


def run(data, seed, settings, workdir, log):
    """Runs tfmot's rows for one seed; the result has the shape of ``cifar_kopt.run``'s."""
    keras = base.keras
    sparsity, cluster_api = tfmot.sparsity.keras, tfmot.clustering.keras
    arrays = load_arrays(data, settings.get("max_train_examples"))
    x_train, y_train, x_test, _ = cifar_training.load_cifar(arrays, settings)
    steps_per_stage = (len(x_train) // cifar_training.BATCH) * settings["finetune_epochs"]
    rows = {}

    def train(model, epochs, learning_rate, callbacks=()):
        return cifar_training.train(
            keras, model, x_train, y_train, epochs=epochs, learning_rate=learning_rate, seed=seed, callbacks=callbacks
        )

    def write(key, model, flatbuffer, stats, **stages):
        name = key.replace("/", "-")
        path = os.path.join(workdir, f"{name}.tflite")
        with open(path, "wb") as f:
            f.write(flatbuffer)
        rows[key] = {
            "file": path,
            "keras_top1": save_top1(model, x_test, os.path.join(workdir, f"{name}_top1.npy")) if model else None,
            "train": stats,
            "params": int(model.count_params()) if model else None,
            **({"stages": stages} if stages else {}),
        }

    def prune(model, target, m_by_n=None):
        if m_by_n:
            schedule = sparsity.ConstantSparsity(0.5, begin_step=0, frequency=settings["prune_frequency"])
            wrapped = sparsity.prune_low_magnitude(
                base.TRAINER.copy_of(model), pruning_schedule=schedule, sparsity_m_by_n=m_by_n
            )
        else:
            schedule = cifar_training.prune_schedule(sparsity, settings, steps_per_stage, target)
            wrapped = sparsity.prune_low_magnitude(base.TRAINER.copy_of(model), pruning_schedule=schedule)
        stats = train(
            wrapped, settings["finetune_epochs"], settings["finetune_learning_rate"], [sparsity.UpdatePruningStep()]
        )
        return sparsity.strip_pruning(wrapped), stats

    def cluster(model, preserve_sparsity):
        wrapped = cluster_api.cluster_weights(
            model,
            number_of_clusters=settings["clusters"],
            cluster_centroids_init=cluster_api.CentroidInitialization.KMEANS_PLUS_PLUS,
            preserve_sparsity=preserve_sparsity,
        )
        stats = train(wrapped, settings["finetune_epochs"], settings["cluster_learning_rate"])
        return cluster_api.strip_clustering(wrapped), stats

    def row(model_name, technique, dense):
        key = f"{model_name}/{technique}"
        if technique == "ptq_int8":
            calibration = x_train[: settings["representative_examples"]]
            write(key, None, base.to_tflite(dense, "int8", calibration), None)
        elif technique == "qat_int8":
            qat = tfmot.quantization.keras.quantize_model(base.TRAINER.copy_of(dense))
            stats = train(qat, settings["qat_epochs"], settings["qat_learning_rate"])
            write(key, qat, quantization_worker.qat_to_tflite(qat), stats)
        elif technique == "prune_2of4":
            stripped, stats = prune(dense, 0.5, m_by_n=(2, 4))
            write(key, stripped, base.to_tflite(stripped, "float32", None), stats)
        elif technique.startswith("prune_") and technique[6:].isdigit():
            stripped, stats = prune(dense, cifar_training.target_of(technique))
            write(key, stripped, base.to_tflite(stripped, "float32", None), stats)
        elif technique == "cluster_16":
            clustered, stats = cluster(base.TRAINER.copy_of(dense), False)
            write(key, clustered, base.to_tflite(clustered, "float32", None), stats)
        elif technique == "prune_cluster_qat_int8":
            pruned, prune_stats = prune(dense, settings["pcqat_sparsity"])
            clustered, cluster_stats = cluster(pruned, True)
            scheme = tfmot.experimental.combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True)
            annotated = tfmot.quantization.keras.quantize_annotate_model(clustered)
            pcqat = tfmot.quantization.keras.quantize_apply(annotated, scheme)
            stats = train(pcqat, settings["qat_epochs"], settings["qat_learning_rate"])
            write(key, pcqat, quantization_worker.qat_to_tflite(pcqat), prune_stats, cluster=cluster_stats, qat=stats)

    if not set(settings["techniques"]) - set(KOPT_ONLY):
        return {"rows": rows}  # Nothing here for tfmot: no float model to train.
    for model_name in settings["models"]:
        log(f"tfmot seed {seed}: {model_name}, float training ({settings['float_epochs']} epochs)")
        dense = cifar_models.build(model_name, keras, seed)
        stats = train(dense, settings["float_epochs"], settings["float_learning_rate"])
        if "float32" in settings["techniques"]:
            write(f"{model_name}/float32", dense, base.to_tflite(dense, "float32", None), stats)
        for technique in settings["techniques"]:
            if technique == "float32" or technique in KOPT_ONLY:
                continue
            log(f"tfmot seed {seed}: {model_name}, {technique}")
            try:
                row(model_name, technique, dense)
            except Exception as err:  # noqa: BLE001 - the row reports it, the others go on.
                rows[f"{model_name}/{technique}"] = {"error": f"{type(err).__name__}: {str(err)[:300]}"}
                log(f"tfmot seed {seed}: {model_name}, {technique} failed: {err}")
    return {"rows": rows}


if __name__ == "__main__":
    base.main(run_seed=run, description=__doc__.splitlines()[0])
