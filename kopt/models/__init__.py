"""Models kopt can train: built-in classifiers and checked loading of saved ones."""

from kopt.models.registry import BUILTIN_MODELS
from kopt.models.registry import check_classifier
from kopt.models.registry import drops_channel_axis
from kopt.models.registry import get_model
from kopt.models.registry import outputs_probabilities
from kopt.models.small_cnn import small_cnn
from kopt.models.tiny_cnn import tiny_cnn
from kopt.models.tiny_mlp import tiny_mlp

__all__ = [
    "BUILTIN_MODELS",
    "check_classifier",
    "drops_channel_axis",
    "get_model",
    "outputs_probabilities",
    "small_cnn",
    "tiny_cnn",
    "tiny_mlp",
]
