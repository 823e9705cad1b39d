"""Technique settings declared once: keys, checks, defaults and search spaces read from one dataclass."""

import dataclasses
from typing import ClassVar

import pytest

from kopt import ConfigError
from kopt.auto import AUTO_PARAMS
from kopt.pipeline import get_technique
from kopt.pipeline import registered_techniques
from kopt.pipeline import settings
from kopt.pipeline.settings import setting


@dataclasses.dataclass(frozen=True)
class _Demo:
    flag_group: ClassVar[str] = "Demo"

    count: int = setting(None, kind=int, low=2, example=16, flag="demo_count", help="h", adds_stage=True)
    share: float | None = setting(None, kind=float, nullable=True, low=0, high=1, open_bounds=True, example=0.5)
    weight: float = setting(0.1, kind=float, low=0, high=1, example=0.1, search={"min": 0.0, "max": 0.5})
    rate: float = setting(1.0, kind=float, low=0, open_bounds=True, search=[1.0, 2.0], search_needs_budget=True)
    kind: str = setting("a", kind=str, choices=("a", "b"))
    on: bool = setting(False, kind=bool)


@pytest.mark.parametrize(
    "params, key, reason",
    [
        ({}, "demo.count", "must be an integer of at least 2, e.g. 16"),
        ({"count": 2, "share": 1.0}, "demo.share", "must be a fraction in (0, 1), e.g. 0.5"),
        ({"count": 2, "weight": 2}, "demo.weight", "must be a number in [0, 1], e.g. 0.1"),
        ({"count": 2, "rate": 0}, "demo.rate", "must be a finite number above 0"),
        ({"count": 2, "kind": "c"}, "demo.kind", "must be one of a, b"),
        ({"count": 2, "on": "yes"}, "demo.on", "must be true or false"),
        ({"count": True}, "demo.count", "must be an integer of at least 2, e.g. 16"),
    ],
)
def test_checks_name_the_key_and_the_value_received(params, key, reason):
    with pytest.raises(ConfigError) as caught:
        settings.check_params("demo", _Demo, params)
    assert (caught.value.key, caught.value.reason) == (key, reason)
    assert caught.value.value == params.get(key.partition(".")[2], None)


def test_keys_defaults_and_search_space_come_from_the_fields():
    assert settings.param_keys(_Demo) == ("count", "share", "weight", "rate", "kind", "on")
    assert settings.read(_Demo, {"count": 4, "unknown": 1}) == _Demo(count=4)
    assert settings.search_space("demo", _Demo, size_budget=False) == {"demo.weight": {"min": 0.0, "max": 0.5}}
    assert list(settings.search_space("demo", _Demo, size_budget=True)) == ["demo.weight", "demo.rate"]
    settings.check_params("demo", _Demo, {"count": 3, "share": None})


def test_bad_declarations_are_refused_naming_the_value():
    with pytest.raises(ValueError, match="Received: kind=<class 'dict'>"):
        setting(None, kind=dict)
    with pytest.raises(ValueError, match="Received: from_flags='often'"):
        setting(None, kind=int, from_flags="often")

    @dataclasses.dataclass(frozen=True)
    class Plain:
        value: int = 1

    with pytest.raises(TypeError, match="Plain.value"):
        settings.settings_of(Plain)


def test_every_built_in_technique_declares_its_settings():
    for name in registered_techniques():
        technique = get_technique(name)
        if technique.__module__.startswith("kopt.pipeline.stages"):
            assert technique.param_keys == settings.param_keys(technique.settings)


def test_auto_declares_exactly_the_params_kopt_auto_reads():
    assert get_technique("auto").param_keys == tuple(AUTO_PARAMS)
    assert settings.read(get_technique("auto").settings, {}) == get_technique("auto").settings(**AUTO_PARAMS)


def test_technique_values_fill_in_the_declared_defaults():
    values = get_technique("cluster").values({"number_of_clusters": 8})
    assert (values.number_of_clusters, values.init, values.epochs) == (8, "kmeans_plus_plus", 1)
