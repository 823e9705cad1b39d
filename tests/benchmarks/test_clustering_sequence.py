"""The sequence-model clustering benchmark on a few random digits: its rows, report and plot."""

import numpy as np

from benchmarks import clustering_sequence
from benchmarks import sequence_agreement


def test_rows_report_and_plot_on_a_tiny_run(tmp_path, tiny_rows):
    settings = {"float_epochs": 1, "finetune_epochs": 1, "data": tiny_rows(128, 32)}
    rows = clustering_sequence.measure("GRU", 0, settings, str(tmp_path))
    names = ["float", "control", "cluster 16", "cluster 16 + cqat"]
    assert [row["variant"] for row in rows] == names
    # The recurrent kernels are clustered too: no kernel holds more than 16 values, in Keras or under CQAT.
    assert rows[0]["values"] is None and 1 < rows[2]["values"] <= 16 and 1 < rows[3]["values"] <= 16
    assert rows[0]["gzip_ratio"] == 1.0 and rows[2]["gzip_ratio"] < 1.0 and rows[1]["drop"] == 0.0
    document = {"command": "python -m benchmarks.clustering_sequence", "machine": "m", "elapsed_min": 0.1,
                "settings": {"float_epochs": 1, "finetune_epochs": 1}, "rows": rows}  # fmt: skip
    text = clustering_sequence.report(document)
    assert "| GRU | cluster 16 | 1 |" in text and "| GRU | 0 | cluster 16 + cqat |" in text
    clustering_sequence.plot(document, str(tmp_path / "plot.png"))
    assert (tmp_path / "plot.png").stat().st_size > 0


def test_the_transformer_clusters_its_attention_and_embedding(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (160, 28, 28)).astype("float32")
    tokens = sequence_agreement.tokens(images)
    data = (tokens[:128], rng.integers(0, 10, 128), tokens[128:], rng.integers(0, 10, 32))
    rows = clustering_sequence.measure("TransformerEncoder", 0, {"float_epochs": 1, "finetune_epochs": 1, "data": data},
                                       str(tmp_path))  # fmt: skip
    assert 1 < rows[2]["values"] <= 16 and rows[3]["values"] <= 16


def test_the_shared_training_recipe_decays_to_zero_and_returns_the_model(tiny_rows):
    x, y, _, _ = tiny_rows(128, 1)
    model = sequence_agreement.MODELS["GRU"]()
    assert sequence_agreement.train_classifier(model, x, y, 1, 1e-3, True) is model
    assert float(model.optimizer.learning_rate) < 1e-4  # the cosine has reached its end after the last step
