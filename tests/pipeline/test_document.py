"""Recipe documents are read within bounds: size, aliases, nesting, keys, encoding."""

import time

import pytest

from kopt.errors import ConfigError
from kopt.pipeline import document
from kopt.pipeline.document import parse_document
from kopt.pipeline.document import read_document


def _yaml(text):
    return parse_document(text, "yaml", key="recipe", name="r.yaml")


def _alias_bomb(levels):
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for level in range(1, levels + 1):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"


def test_plain_documents_read_as_plain_data():
    assert _yaml("epochs: 3\nlearning_rate: 1e-3\n") == {"epochs": 3, "learning_rate": 1e-3}
    assert parse_document('{"epochs": 3}', "json", key="recipe", name="r.json") == {"epochs": 3}
    assert _yaml("") is None


def test_a_few_aliases_are_fine_and_never_shared():
    data = _yaml("base: &p {epochs: 2}\ntechniques:\n  - {name: prune, params: *p}\n  - {name: qat, params: *p}\n")
    first, second = (stage["params"] for stage in data["techniques"])
    assert first == second == {"epochs": 2}
    first["epochs"] = 5  # a flag override of one stage must not reach the other
    assert second["epochs"] == 2


def test_an_alias_bomb_is_refused_quickly_with_a_short_message():
    text = _alias_bomb(9)
    assert len(text) < 600
    started = time.perf_counter()
    with pytest.raises(ConfigError, match="expands to more than 10000 values") as caught:
        _yaml(text)
    assert time.perf_counter() - started < 2.0
    assert len(str(caught.value)) < 200


def test_a_recursive_alias_is_refused():
    with pytest.raises(ConfigError, match="recursive"):
        _yaml("a: &a [1, *a]\n")


@pytest.mark.parametrize("syntax, text", [("yaml", "[" * 3000 + "]" * 3000), ("json", "[" * 100_000 + "]" * 100_000)])
def test_deep_nesting_is_refused(syntax, text):
    with pytest.raises(ConfigError, match="nests deeper than"):
        parse_document(text, syntax, key="recipe", name="r")


@pytest.mark.parametrize(
    "syntax, text", [("yaml", "epochs: 1\nseed: 2\nepochs: 3\n"), ("json", '{"epochs": 1, "epochs": 3}')]
)
def test_duplicate_keys_are_refused_not_silently_overwritten(syntax, text):
    with pytest.raises(ConfigError, match="'epochs' appears twice"):
        parse_document(text, syntax, key="recipe", name="r")


@pytest.mark.parametrize(
    "text, where",
    [
        ("1: 2\n", "the key 1 is"),
        ("null: 2\n", "the key None"),
        ("techniques:\n  - {name: x, params: {0.5: 1}}\n", "under techniques[0].params"),
    ],
)
def test_non_string_keys_are_refused_with_their_place(text, where):
    with pytest.raises(ConfigError, match="is not a string") as caught:
        _yaml(text)
    assert where in str(caught.value)


def test_python_tags_are_refused():
    with pytest.raises(ConfigError, match="not valid YAML"):
        _yaml("epochs: !!python/object/apply:os.system ['true']\n")


def test_files_that_are_not_utf8_too_large_or_unreadable(tmp_path):
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("dataset: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 12 is 0xe9\)"):
        read_document(str(latin), key="recipe")
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * document.MAX_BYTES + b"\n")
    with pytest.raises(ConfigError, match="is over 1024 KiB"):
        read_document(str(big), key="recipe")
    with pytest.raises(ConfigError, match="cannot read the file"):
        read_document(str(tmp_path), key="recipe")
