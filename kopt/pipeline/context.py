"""What every pipeline stage receives: the data, the recipe and where to write."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class StageContext:
    """The shared inputs of the pipeline's stages.

    Attributes:
        recipe: The validated :class:`kopt.pipeline.Recipe`.
        train: Batched training ``tf.data.Dataset`` of ``(images, labels)``,
            without the validation examples.
        validation: Batched validation ``tf.data.Dataset`` carved from the
            training data, or ``None`` when the recipe needs none.
        test: Batched test ``tf.data.Dataset``; used for reporting only, never for
            choosing anything during training.
        info: The :class:`kopt.data.DatasetInfo`.
        export_dir: Directory for files the stages write.
    """

    recipe: object
    train: object
    test: object
    info: object
    export_dir: str
    validation: object = None
