"""The heatmap and the front are real PNGs."""

from kopt.auto.plots import plot_pareto
from kopt.auto.plots import plot_sensitivity
from kopt.auto.sensitivity import SensitivityTable


def test_both_figures_are_png(tmp_path):
    table = SensitivityTable(
        baseline_accuracy=97.0,
        layers=["a", "b"],
        sizes={"a": 10, "b": 20},
        sparsities=[0.5, 0.9],
        accuracy={"a": [96.0, 80.0], "b": [97.0, 95.0]},
        bits=[8, 4],
        quantized_accuracy={"a": [97.0, 96.0], "b": [97.0, 97.0]},
    )
    heatmap = plot_sensitivity(table, str(tmp_path / "s.png"))
    points = [
        {"step": 0, "accuracy": 97.0, "gzip_bytes": 9000, "within_budget": True},
        {"step": 1, "accuracy": 95.0, "gzip_bytes": 4000, "within_budget": False},
    ]
    front = plot_pareto(points, 97.1, 0.5, str(tmp_path / "p.png"), best_step=0)
    for path in (heatmap, front):
        assert open(path, "rb").read(4) == b"\x89PNG"
