"""The technique registry, the pipeline's extension point."""

import pytest

from kopt import ConfigError
from kopt.pipeline import Technique
from kopt.pipeline import get_technique
from kopt.pipeline import register_technique
from kopt.pipeline import registered_techniques


def test_register_and_get():
    @register_technique
    class Noop(Technique):
        name = "test_noop_technique"

        def apply(self, model, context, params):
            return model

    assert "test_noop_technique" in registered_techniques()
    assert isinstance(get_technique("test_noop_technique"), Noop)


def test_unknown_technique_lists_known_ones():
    with pytest.raises(ConfigError, match="unknown technique") as err:
        get_technique("no_such_technique")
    assert err.value.key == "techniques"


def test_registration_errors():
    with pytest.raises(TypeError):
        register_technique(object)

    class Nameless(Technique):
        pass

    with pytest.raises(ValueError, match="non-empty string"):
        register_technique(Nameless)

    @register_technique
    class First(Technique):
        name = "test_duplicate_technique"

    class Second(Technique):
        name = "test_duplicate_technique"

    with pytest.raises(ValueError, match="already registered"):
        register_technique(Second)


def test_base_apply_must_be_overridden():
    with pytest.raises(NotImplementedError):
        Technique().apply(None, None, {})
