"""Models kopt can train: built-in classifiers and checked loading of saved ones."""

from kopt.models.pixels import pixel_scaling_layer
from kopt.models.pixels import with_pixel_scaling
from kopt.models.registry import BUILTIN_MODELS
from kopt.models.registry import check_classifier
from kopt.models.registry import drops_channel_axis
from kopt.models.registry import get_model
from kopt.models.scores import accuracy_metric
from kopt.models.scores import classification_loss
from kopt.models.scores import is_one_score
from kopt.models.scores import output_activation
from kopt.models.scores import outputs_probabilities
from kopt.models.scores import predicted_classes
from kopt.models.scores import two_class_logits
from kopt.models.small_cnn import small_cnn
from kopt.models.tiny_cnn import tiny_cnn
from kopt.models.tiny_mlp import tiny_mlp

__all__ = [
    "BUILTIN_MODELS",
    "accuracy_metric",
    "check_classifier",
    "classification_loss",
    "drops_channel_axis",
    "get_model",
    "is_one_score",
    "output_activation",
    "outputs_probabilities",
    "pixel_scaling_layer",
    "predicted_classes",
    "small_cnn",
    "tiny_cnn",
    "tiny_mlp",
    "two_class_logits",
    "with_pixel_scaling",
]
