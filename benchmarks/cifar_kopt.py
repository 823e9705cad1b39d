"""kopt's side of the CIFAR-10 suite: one seed's models and files, through kopt's public API.

For each network of ``settings["models"]`` (``cifar_models``): train it from
scratch, then derive every row of ``settings["techniques"]`` from that float model
with kopt (``CifarSettings`` states each recipe): ``quantize_calibrated`` (PTQ),
``quantize_model`` (QAT), ``prune_low_magnitude`` + ``strip_pruning`` (50/80/90%,
2:4), ``prune_channels`` and ``latency_channel_plan`` (structured), ``cluster_weights`` + ``strip_clustering``,
pruning then clustering with preserved zeros then ``quantize_model(scheme="pcqat")``,
and ``Distiller`` (the seed's float teacher teaching a student from scratch).
Every file is written by ``tflite_export``. A row that raises is recorded with its
error and the others go on. Scoring, sizes and latency are left to
``benchmarks/cifar.py``, which treats tfmot's files with the same code.
"""

import os
import time

from benchmarks import cifar_models
from benchmarks import cifar_training
from benchmarks import kopt_side
from benchmarks.core.data import load_arrays
from benchmarks.core.scoring import save_top1

__all__ = ["run"]


def run(data, seed, settings, workdir, log=print):
    """Runs every model and row for one seed.

    Returns:
        ``{"rows": {"<model>/<technique>": {"file", "keras_top1", "train", "params"} or
        {"error"}}, "framework", "seed", "versions", "wall_time_s"}``; ``train`` is ``cifar_training.train``'s figures
        of the row's own training stage (the first stage for chained rows, with the
        others under ``stages``).
    """
    import keras

    import tflite_export
    from kopt import clustering
    from kopt import distillation
    from kopt import pruning
    from kopt import quantization

    x_train, y_train, x_test, _ = cifar_training.load_cifar(
        load_arrays(data, settings.get("max_train_examples")), settings
    )
    os.makedirs(workdir, exist_ok=True)
    started = time.perf_counter()
    steps_per_stage = (len(x_train) // cifar_training.BATCH) * settings["finetune_epochs"]
    copy_of = kopt_side.TRAINER.copy_of
    rows = {}
    floats = {}

    def train(model, epochs, learning_rate, callbacks=(), **kwargs):
        return cifar_training.train(
            keras, model, x_train, y_train, epochs=epochs, learning_rate=learning_rate, seed=seed,
            callbacks=callbacks, **kwargs,
        )  # fmt: skip

    def write(key, model, stats, mode="float32", **stages):
        name = key.replace("/", "-")
        path = tflite_export.convert(model, os.path.join(workdir, f"{name}.tflite"), mode=mode)
        rows[key] = {
            "file": path,
            "keras_top1": save_top1(model, x_test, os.path.join(workdir, f"{name}_top1.npy")),
            "train": stats,
            "params": int(model.count_params()),
            **({"stages": stages} if stages else {}),
        }

    def prune(model, sparsity, **pattern):
        schedule = (
            pruning.ConstantSparsity(0.5, begin_step=0, frequency=settings["prune_frequency"])
            if pattern
            else cifar_training.prune_schedule(pruning, settings, steps_per_stage, sparsity)
        )
        wrapped = pruning.prune_low_magnitude(copy_of(model), schedule, **pattern)
        stats = train(
            wrapped, settings["finetune_epochs"], settings["finetune_learning_rate"], [pruning.UpdatePruningStep()]
        )
        return pruning.strip_pruning(wrapped), stats

    def cluster(model, preserve_sparsity):
        wrapped = clustering.cluster_weights(
            model, settings["clusters"], "KMEANS_PLUS_PLUS", preserve_sparsity=preserve_sparsity
        )
        stats = train(wrapped, settings["finetune_epochs"], settings["cluster_learning_rate"])
        return clustering.strip_clustering(wrapped), stats

    def row(model_name, technique):
        key = f"{model_name}/{technique}"
        dense = floats.get(model_name)
        if technique == "ptq_int8":
            path = os.path.join(workdir, f"{model_name}-ptq_int8.tflite")
            calibration = x_train[: settings["representative_examples"]]
            quantization.quantize_calibrated(dense, path, calibration)
            # The file's own classes stand in for a Keras model's: PTQ has none.
            rows[key] = {"file": path, "keras_top1": None, "train": None, "params": int(dense.count_params())}
        elif technique == "qat_int8":
            qat = quantization.quantize_model(copy_of(dense))
            write(key, qat, train(qat, settings["qat_epochs"], settings["qat_learning_rate"]), "int8")
        elif technique == "prune_2of4":
            write(key, *prune(dense, 0.5, sparsity_m_by_n=(2, 4)), mode="float32")
        elif technique.startswith("prune_") and technique[6:].isdigit():
            stripped, stats = prune(dense, cifar_training.target_of(technique))
            write(key, stripped, stats)
        elif technique == "float32_continued":
            # The structured rows' control: as many more epochs, at their rate, without removing anything.
            longer = copy_of(dense)
            write(key, longer, train(longer, settings["structured_epochs"], settings["structured_learning_rate"]))
        elif technique == "structured_latency":
            plan = pruning.latency_channel_plan(dense, settings["structured_speedup"], log=log)
            smaller = pruning.apply_channel_plan(dense, plan)
            stats = train(smaller, settings["structured_epochs"], settings["structured_learning_rate"])
            write(key, smaller, stats)
            prunable = [group for group in plan["groups"] if not group["frozen"]]
            removed = sum(len(group["removed"]) for group in prunable) / sum(group["channels"] for group in prunable)
            rows[key]["channels_removed"] = round(removed, 4)
        elif technique == "structured_50_scratch":
            # The pruned rows' other baseline: their architecture, trained from scratch for the whole
            # budget (float and fine-tuning epochs); what the width costs whatever the pruning method.
            keras.utils.set_random_seed(seed + 2)
            smaller = keras.models.clone_model(pruning.prune_channels(dense, 0.5))
            epochs = settings["float_epochs"] + settings["structured_epochs"]
            write(key, smaller, train(smaller, epochs, settings["float_learning_rate"]))
        elif technique.startswith("structured_"):
            smaller = pruning.prune_channels(dense, cifar_training.target_of(technique))
            stats = train(smaller, settings["structured_epochs"], settings["structured_learning_rate"])
            write(key, smaller, stats)
        elif technique == "cluster_16":
            write(key, *cluster(copy_of(dense), False), mode="float32")
        elif technique == "prune_cluster_qat_int8":
            pruned, prune_stats = prune(dense, settings["pcqat_sparsity"])
            clustered, cluster_stats = cluster(pruned, True)
            pcqat = quantization.quantize_model(clustered, scheme="pcqat")
            stats = train(pcqat, settings["qat_epochs"], settings["qat_learning_rate"])
            write(key, pcqat, prune_stats, "int8", cluster=cluster_stats, qat=stats)
        elif technique == "distill":
            teacher = floats.get(settings["distill_teacher"])
            if model_name != settings["distill_student"] or teacher is None:
                return
            student = cifar_models.build(model_name, keras, seed + 1)
            distiller = distillation.Distiller(
                student,
                teacher,
                alpha=settings["distill_alpha"],
                temperature=settings["distill_temperature"],
                allow_larger_student=True,
            )
            stats = train(
                distiller,
                settings["float_epochs"],
                settings["float_learning_rate"],
                compile_kwargs={"metrics": ["accuracy"]},
            )
            write(key, student, stats)

    # The teacher first, so the student's row finds it.
    order = sorted(settings["models"], key=lambda name: name != settings["distill_teacher"])
    for model_name in order:
        # A part that only distils (its float rows measured by another part) trains no float student.
        if model_name == settings["distill_teacher"] or set(settings["techniques"]) - {"distill"}:
            log(f"kopt seed {seed}: {model_name}, float training ({settings['float_epochs']} epochs)")
            dense = cifar_models.build(model_name, keras, seed)
            stats = train(dense, settings["float_epochs"], settings["float_learning_rate"])
            floats[model_name] = dense
            if "float32" in settings["techniques"]:
                write(f"{model_name}/float32", dense, stats)
        for technique in settings["techniques"]:
            if technique == "float32":
                continue
            log(f"kopt seed {seed}: {model_name}, {technique}")
            try:
                row(model_name, technique)
            except Exception as err:  # noqa: BLE001 - the row reports it, the others go on.
                rows[f"{model_name}/{technique}"] = {"error": f"{type(err).__name__}: {str(err)[:300]}"}
                log(f"kopt seed {seed}: {model_name}, {technique} failed: {err}")
    return {
        "rows": rows,
        "framework": "kopt",
        "seed": seed,
        "versions": kopt_side.versions(),
        "wall_time_s": time.perf_counter() - started,
    }
