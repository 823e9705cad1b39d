"""Test helpers for kopt classes and for users' own kopt-compatible layers."""

from kopt.testing.test_case import TestCase
from kopt.testing.test_case import run_layer_test
from kopt.testing.test_case import run_model_saving_test
from kopt.testing.test_case import run_serialization_test

__all__ = ["TestCase", "run_layer_test", "run_model_saving_test", "run_serialization_test"]
