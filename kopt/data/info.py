"""The description of a loaded dataset that models and reports read."""

import dataclasses
from typing import Any

PIXEL_LEVELS = 255  # an 8-bit pixel's largest value: [0, 1] images times this are 0-255 pixels


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset.

    Attributes:
        name: The dataset name as given to :func:`load_dataset`.
        input_shape: Shape of one image, ``(height, width, channels)``.
        num_classes: Number of classes; labels are ``0 .. num_classes - 1``.
        train_examples: Number of training examples, or ``None`` if unknown.
        test_examples: Number of test examples, or ``None`` if unknown.
        source: Where the data came from (bundled copy, TFDS splits, file path).
        pixel_levels: 255 where the images are 8-bit grey levels (or the embedded
            digits' levels) divided by 255 into ``[0, 1]``; ``None`` where the
            values are given as they are (float images, features, token ids).
        class_names: The class names in label order where the data names them (an
            image folder's class folders, a TFDS ``ClassLabel``), else ``None``.
        fed_as_pixels: ``True`` where ``kopt-optimize`` feeds the images as
            0-``pixel_levels`` values rather than in ``[0, 1]``, because its model
            scales its own pixels (:func:`kopt.models.pixel_scaling_layer`); every
            other model of the run (a teacher, a student) must then read them so.
    """

    name: str
    input_shape: tuple
    num_classes: int
    train_examples: int | None
    test_examples: int | None
    source: str
    pixel_levels: int | None = None
    fed_as_pixels: bool = False
    class_names: tuple | None = None

    def to_dict(self) -> dict[str, Any]:
        """Returns the info as a JSON-friendly dict."""
        data = dataclasses.asdict(self)
        data["input_shape"] = list(self.input_shape)
        if self.class_names is not None:
            data["class_names"] = list(self.class_names)
        return data
