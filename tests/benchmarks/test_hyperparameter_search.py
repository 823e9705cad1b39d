"""The search benchmark on tiny settings: both recipes run, the section names the best trial."""

import os
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from benchmarks import hyperparameter_search  # noqa: E402


@pytest.mark.slow
def test_tiny_search_compares_with_the_default(tmp_path, mnist_npz):
    settings = hyperparameter_search.SearchSettings(
        epochs=1, finetune_epochs=1, max_trials=2, tuner="random", max_train_examples=300
    )
    markdown = tmp_path / "B.md"
    document = hyperparameter_search.run_benchmark(
        mnist_npz, 0, settings, output_dir=str(tmp_path), markdown_path=str(markdown), command="test", quick=True
    )
    assert set(document["rows"]) == {"default", "searched"}
    assert len(document["trials"]) == 2
    assert (tmp_path / "search_quick_trials.png").stat().st_size > 0
    assert "Best trial" in markdown.read_text()
