"""kopt.layer_support: the per-technique table comes from the registries, and README shows it."""

import os

from kopt import layer_support

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def test_support_is_read_from_each_registry():
    support = layer_support.layer_support()
    assert set(support) == set(layer_support.CANDIDATES)
    assert support["Conv2D"] == {"prune": "yes", "cluster": "yes", "qat": "weights", "structured": "producer"}
    assert support["Flatten"]["qat"] == "passthrough" and support["Add"]["qat"] == "output"
    assert (
        support["LSTM"]["qat"] == "weights"
        and support["MultiHeadAttention"]["qat"] == "split"
        and support["LayerNormalization"]["structured"] == "keeps whole"
    )
    assert support["Rescaling"]["qat"] == "output" and support["Conv2DTranspose"]["qat"] == "weights"


def test_readme_table_is_the_generated_one():
    with open(README, encoding="utf-8") as handle:
        text = handle.read()
    section = text.split("<!-- layer_support:begin -->")[1].split("<!-- layer_support:end -->")[0]
    assert layer_support.markdown_table() in section, "README is stale: run python -m kopt.layer_support --readme"
