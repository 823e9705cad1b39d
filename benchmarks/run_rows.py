"""Rows of the summary table, read from the JSON documents of one ``benchmarks/run.py`` run.

Each benchmark keeps its own document layout; the functions here read those
documents (and nothing else) into one shape, so the summary holds only figures
that run measured. A row::

    {"key", "group", "rank", "technique", "framework", "benchmark", "command", "epochs",
     "note", "status": "ran" | "not run", "reason", "seeds": {seed: record},
     "baseline": group of the float row its latency is divided by}

and one seed's record, where any figure may be missing (``error`` if the seed failed)::

    {"keras_accuracy", "tflite_accuracy", "agreement",   # fractions of the test set
     "gzip_bytes", "file", "step_s", "plain_step_s", "error",
     "params", "no_file"}   # only for a model without a file: Keras' count, and why

``step_s`` is the median wall time per step of the row's own training stage and
``plain_step_s`` that of plain training timed in the same process (the ratio's
denominator). Nothing here trains or imports TensorFlow.
"""

from benchmarks import quantization_models
from benchmarks import row_shape

__all__ = ["READERS", "assemble", "rows_from_clustering", "rows_from_distillation", "rows_from_extras",
           "rows_from_pruning", "rows_from_quantization"]  # fmt: skip


def rows_from_pruning(document):
    settings = document["settings"]
    epochs = f"{settings['dense_epochs']} + {settings['prune_epochs']} pruning"
    rows = []
    for framework in ("kopt", "tfmot"):
        runs, reason = row_shape.framework_runs(document, framework)
        rows.append(
            row_shape.make_row(
                f"{framework}_float",
                "float",
                "float baseline",
                framework,
                document,
                f"{settings['dense_epochs']}",
                row_shape.per_seed(runs, lambda run: _pruning_record(run["dense"], run, plain=True)),
                note="step: plain fine-tuning (the reference)",
                reason=reason,
            )
        )
        for sparsity in settings["sparsities"]:
            key = f"{sparsity:g}"

            def figures(run, key=key):
                pruned = run.get("pruned", {}).get(key)
                return (
                    _pruning_record(pruned, run) if pruned else {"error": run.get("pruning_not_run", row_shape.NOT_RUN)}
                )

            rows.append(
                row_shape.make_row(
                    f"{framework}_prune_{key}",
                    "prune",
                    f"pruning {sparsity:.0%} (polynomial decay)",
                    framework,
                    document,
                    epochs,
                    row_shape.per_seed(runs, figures),
                    note="float32 file",
                    reason=reason,
                    rank=sparsity,
                )
            )
    return rows


def _pruning_record(entry, run, *, plain=False):
    plain_step = row_shape.median(run.get("plain_finetune"))
    return row_shape.record(
        keras_accuracy=entry.get("keras_accuracy"),
        tflite_accuracy=entry.get("tflite_float32_accuracy"),
        agreement=entry.get("tflite_float32_agreement"),
        gzip_bytes=entry.get("tflite_float32_gzip_bytes"),
        file=entry.get("tflite_float32_path"),
        step_s=plain_step if plain else entry.get("step_time_s_median"),
        plain_step_s=plain_step,
    )


def rows_from_quantization(document):
    """The float, QAT and PTQ rows; a model other than the shared one has its own float row.

    Documents written before the benchmark had a ``model`` setting used the shared model.
    """
    settings = document["settings"]
    # The quantization benchmark's model, where it is not the one the other
    # benchmarks share, gets a float row of its own ("qat_float").
    model = settings.get("model", quantization_models.SHARED_MODEL)
    own_model = model != quantization_models.SHARED_MODEL
    label = quantization_models.LABELS.get(model, model)
    float_group, suffix = ("qat_float", f", {label}") if own_model else ("float", "")
    rows = []
    for framework in ("kopt", "tfmot"):
        runs, reason = row_shape.framework_runs(document, framework)

        def figures(run, kind, step):
            score = run.get("scores", {}).get(kind)
            if not score:
                return {"error": "not scored"}
            return row_shape.record(
                keras_accuracy=score.get("keras_accuracy"),
                tflite_accuracy=score.get("tflite_accuracy"),
                agreement=score.get("agreement"),
                gzip_bytes=score.get("gzip_bytes"),
                file=run["files"].get(kind),
                step_s=step(run),
                plain_step_s=row_shape.median(run.get("plain_finetune")),
            )

        ptq = "PTQ int8 " + ("(tflite_export.convert)" if framework == "kopt" else "(TFLiteConverter, tf_keras model)")
        latency_note = "latency ratio: over this model's float row" if own_model else ""
        ptq_note = "; ".join(filter(None, ["post-training: Keras accuracy is the float model's", latency_note]))
        rows += [
            row_shape.make_row(
                f"{framework}_float_q",
                float_group,
                f"float baseline{suffix}",
                framework,
                document,
                f"{settings['dense_epochs']}",
                row_shape.per_seed(
                    runs, lambda run: figures(run, "float32", lambda r: row_shape.median(r.get("plain_finetune")))
                ),
                note="step: plain fine-tuning (the reference)",
                reason=reason,
                baseline=float_group,
            ),
            row_shape.make_row(
                f"{framework}_qat",
                "qat",
                f"QAT int8{suffix}",
                framework,
                document,
                f"{settings['dense_epochs']} + {settings['qat_epochs']} QAT",
                row_shape.per_seed(
                    runs, lambda run: figures(run, "qat_int8", lambda r: row_shape.median(r.get("qat")))
                ),
                note=latency_note,
                reason=reason,
                baseline=float_group,
            ),
            row_shape.make_row(
                f"{framework}_ptq",
                "ptq",
                f"{ptq}{suffix}",
                framework,
                document,
                f"{settings['dense_epochs']} (PTQ: none)",
                row_shape.per_seed(runs, lambda run: figures(run, "ptq_int8", lambda r: None)),
                note=ptq_note,
                reason=reason,
                baseline=float_group,
            ),
        ]
    return rows


def rows_from_clustering(document):
    settings = document["settings"]
    dense, prune, cluster, qat = (settings[k] for k in ("dense_epochs", "prune_epochs", "cluster_epochs", "qat_epochs"))
    epochs = {
        "float32": f"{dense}",
        "cluster": f"{dense} + {cluster} cluster",
        "prune_cluster": f"{dense} + {prune} prune + {cluster} cluster",
        "cluster_cqat_int8": f"{dense} + {cluster} cluster + {qat} CQAT",
        "prune_cluster_pcqat_int8": f"{dense} + {prune} prune + {cluster} cluster + {qat} PCQAT",
    }
    runs = document.get("runs") or {}

    def figures(run, name):
        score = run.get("scores", {}).get(name, {})
        plain = row_shape.median(run.get("plain_finetune"))
        return row_shape.record(
            keras_accuracy=score.get("keras_accuracy"),
            tflite_accuracy=score.get("accuracy"),
            agreement=score.get("agreement"),
            gzip_bytes=score.get("gzip_bytes"),
            file=run.get("files", {}).get(name),
            step_s=plain if name == "float32" else row_shape.median(run.get("steps", {}).get(name)),
            plain_step_s=plain,
        )

    rows = [
        row_shape.make_row(
            "kopt_float_c",
            "float",
            "float baseline",
            "kopt",
            document,
            epochs["float32"],
            row_shape.per_seed(runs, lambda run: figures(run, "float32")),
            note="step: plain fine-tuning (the reference)" + row_shape.layout_note(settings),
        )
    ]
    for name, technique in row_shape.cluster_techniques(settings).items():
        rows.append(
            row_shape.make_row(
                f"kopt_{name}",
                name,
                technique,
                "kopt",
                document,
                epochs[name],
                row_shape.per_seed(runs, lambda run, name=name: figures(run, name)),
                note="step: the row's last stage" + row_shape.layout_note(settings),
            )
        )
    return rows


def rows_from_distillation(document):
    settings = document["settings"]
    runs = document.get("runs") or {}
    epochs = f"{settings['student_epochs']} (teacher {settings['teacher_epochs']})"

    def figures(run, kind):
        student, tflite = run[kind], run[kind].get("tflite", {})
        return row_shape.record(
            keras_accuracy=student["test_accuracy"] / 100,
            tflite_accuracy=tflite.get("tflite_accuracy"),
            agreement=tflite.get("agreement"),
            gzip_bytes=tflite.get("gzip_bytes"),
            file=tflite.get("path"),
            step_s=row_shape.median(student.get("steps")),
            plain_step_s=row_shape.median(run["scratch"].get("steps")),
        )

    student, teacher = settings["student"], settings["teacher"]
    return [
        row_shape.make_row(
            "kopt_distill_scratch",
            "distill_scratch",
            f"{student} student from scratch (no distillation)",
            "kopt",
            document,
            epochs,
            row_shape.per_seed(runs, lambda run: figures(run, "scratch")),
            note="the distilled row's reference",
        ),
        row_shape.make_row(
            "kopt_distill",
            "distill",
            f"distillation: {student} student of {teacher}",
            "kopt",
            document,
            epochs,
            row_shape.per_seed(runs, lambda run: figures(run, "distilled")),
            note="step ratio: over the scratch student",
        ),
    ]


def rows_from_extras(document):
    settings = document["settings"]
    dense, finetune = settings["dense_epochs"], settings["finetune_epochs"]
    clustering = settings["clustering"]
    techniques = {
        "float32": ("float", "float baseline", f"{dense}", "step: plain fine-tuning (the reference)"),
        "m_by_n_2_4": ("2_4", "2:4 pruning", f"{dense} + {finetune} pruning", "float32 file"),
        "structured": (
            "structured",
            f"structured pruning, {settings['structured_fraction']:.0%} of channels",
            f"{dense} + {finetune}",
            "a smaller dense model",
        ),
        "keras_int8": ("keras_int8", 'Keras `model.quantize("int8")`', f"{dense} (quantize: none)", ""),
    }
    cluster_epochs = {
        "cluster": f"{dense} + {clustering['cluster_epochs']} cluster",
        "prune_cluster": f"{dense} + {clustering['prune_epochs']} prune + {clustering['cluster_epochs']} cluster",
        "cluster_cqat_int8": f"{dense} + {clustering['cluster_epochs']} cluster + {clustering['qat_epochs']} CQAT",
        "prune_cluster_pcqat_int8": (
            f"{dense} + {clustering['prune_epochs']} prune + {clustering['cluster_epochs']} cluster + "
            f"{clustering['qat_epochs']} PCQAT"
        ),
    }
    for name, technique in row_shape.cluster_techniques(clustering).items():
        techniques[name] = (
            name,
            technique,
            cluster_epochs[name],
            "step: the row's last stage" + row_shape.layout_note(clustering),
        )
    wanted = {
        "kopt": ("float32", "m_by_n_2_4", "structured", "keras_int8"),
        "tfmot": ("float32", "m_by_n_2_4", *row_shape.CLUSTER_ROWS),
    }
    rows = []
    for framework, names in wanted.items():
        runs, reason = row_shape.framework_runs(document, framework)
        for name in names:
            group, technique, epochs, note = techniques[name]
            row_framework = "keras" if name == "keras_int8" else framework
            if name == "keras_int8":
                note = _keras_int8_note(runs)
            rows.append(
                row_shape.make_row(
                    f"{row_framework}_{name}",
                    group,
                    technique,
                    row_framework,
                    document,
                    epochs,
                    row_shape.per_seed(runs, lambda run, name=name: _extras_record(run, name)),
                    note=note,
                    reason=reason,
                )
            )
    return rows


def _keras_int8_note(runs):
    """Which layers Keras quantized and which stayed float, as the first seed that ran says."""
    for run in runs.values():
        row = run.get("rows", {}).get("keras_int8")
        if row:
            return (
                f"int8: {', '.join(row.get('quantized_layers', [])) or 'none'}; "
                f"float: {', '.join(row.get('float_layers', [])) or 'none'}"
            )
    return ""


def _extras_record(run, name):
    row = run.get("rows", {}).get(name)
    if row is None:
        return {"error": row_shape.NOT_RUN}
    score, plain = row.get("score", {}), row_shape.median(run.get("plain_finetune"))
    no_file = None
    if not row.get("file") and row.get("file_errors"):
        no_file = "; ".join(f"{exporter}: {error}" for exporter, error in row["file_errors"].items())
    return row_shape.record(
        keras_accuracy=score.get("keras_accuracy"),
        tflite_accuracy=score.get("accuracy"),
        agreement=score.get("agreement"),
        gzip_bytes=score.get("gzip_bytes"),
        file=row.get("file"),
        step_s=plain if name == "float32" else row_shape.median(row.get("steps")),
        plain_step_s=plain,
        params=None if row.get("file") else row.get("params"),
        no_file=no_file,
    )


READERS = {
    "pruning": rows_from_pruning,
    "quantization": rows_from_quantization,
    "clustering": rows_from_clustering,
    "distillation": rows_from_distillation,
    "extras": rows_from_extras,
}


def assemble(documents, failures=None):
    """Every row of the documents in table order, one float baseline per framework.

    Args:
        documents: ``{benchmark: document}`` of the benchmarks that ran.
        failures: ``{benchmark: why}`` of those that raised; each gives one
            "not run" row.

    Returns:
        The rows; the float baseline of each framework comes from the first of
        ``row_shape.FLOAT_SOURCES`` whose float row ran (else the first, saying why not).
    """
    rows = []
    for benchmark, document in documents.items():
        rows += READERS[benchmark](document)
    for benchmark, why in (failures or {}).items():
        rows.append(row_shape.failed_row(benchmark, why))
    floats = {}
    for wanted in ("ran", row_shape.NOT_RUN):
        for source in row_shape.FLOAT_SOURCES:
            for row in rows:
                if row["group"] == "float" and row["benchmark"] == source and row["status"] == wanted:
                    floats.setdefault(row["framework"], row)
    for framework, row in floats.items():
        row["key"] = f"{framework}_float"
    rows = [row for row in rows if row["group"] != "float" or floats.get(row["framework"]) is row]
    order = {group: index for index, group in enumerate(row_shape.GROUPS + ("failed",))}
    return sorted(
        rows, key=lambda row: (order[row["group"]], row["rank"], row_shape.FRAMEWORK_ORDER.index(row["framework"]))
    )
