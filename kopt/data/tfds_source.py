"""TensorFlow Datasets as a source for :func:`kopt.data.load_dataset`.

Kept apart from the bundled and npz sources because it is the only one that can
touch the network, and it does so only when asked with ``download=True``.
"""

import tensorflow as tf

from kopt import extras
from kopt.data.info import PIXEL_LEVELS
from kopt.data.info import DatasetInfo
from kopt.errors import ConfigError

# The split used for testing, in order of preference; a dataset with neither keeps
# its last tenth of "train" aside.
_TEST_SPLITS = ("test", "validation")


def load_tfds(dataset, tfds_name, *, batch_size, data_dir, download, seed, image_size=None):
    """Loads ``tfds_name`` as ``(train, test, info)``; see ``kopt.data.load_dataset``.

    ``image_size`` (``(height, width)`` or ``None``) resizes each image before
    batching, so datasets of variable-size images load.

    Raises:
        kopt.extras.MissingExtraError: tensorflow-datasets is not installed.
    """
    tfds = extras.require("tensorflow_datasets", f"dataset={dataset!r}")

    try:
        builder = tfds.builder(tfds_name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as err:
        raise ConfigError("dataset", dataset, f"TensorFlow Datasets has no dataset {tfds_name!r}") from err
    input_shape, num_classes, class_names = _classification_features(dataset, tfds, builder.info, image_size)
    if download:
        builder.download_and_prepare()
    train_split, test_split = _choose_splits(builder.info)
    train = _read_split(dataset, tfds, tfds_name, train_split, data_dir, seed, shuffle=True)
    test = _read_split(dataset, tfds, tfds_name, test_split, data_dir, seed, shuffle=False)

    def to_float(image, label):
        image = tf.cast(image, tf.float32) / 255.0
        if image_size is not None:
            image = tf.image.resize(image, image_size, method="bilinear")
        return image, tf.cast(label, tf.int32)

    train_count = _count(train)
    test_count = _count(test)
    train = (
        train.map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
        .shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    test = test.map(to_float, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).prefetch(tf.data.AUTOTUNE)
    where = data_dir or "the TFDS default data_dir"
    info = DatasetInfo(
        name=dataset,
        input_shape=input_shape,
        num_classes=num_classes,
        train_examples=train_count,
        test_examples=test_count,
        source=f"tfds {tfds_name} splits {train_split!r}/{test_split!r} from {where}"
        + (f", resized to {image_size[0]}x{image_size[1]}" if image_size is not None else ""),
        pixel_levels=PIXEL_LEVELS,
        class_names=class_names,
    )
    return train, test, info


def _classification_features(dataset, tfds, info, image_size=None):
    keys = info.supervised_keys
    if not keys or len(keys) != 2 or not all(isinstance(key, str) for key in keys):
        raise ConfigError(
            "dataset",
            dataset,
            f"not an image-classification dataset: supervised_keys={keys!r}, expected (image, label)",
        )
    image_key, label_key = keys
    image_feature = info.features[image_key]
    label_feature = info.features[label_key]
    if not isinstance(image_feature, tfds.features.Image):
        raise ConfigError("dataset", dataset, f"feature {image_key!r} is {type(image_feature).__name__}, not an Image")
    if not isinstance(label_feature, tfds.features.ClassLabel):
        raise ConfigError(
            "dataset", dataset, f"feature {label_key!r} is {type(label_feature).__name__}, not a ClassLabel"
        )
    shape = tuple(image_feature.shape)
    if image_size is not None:
        shape = (*image_size, shape[-1])
    if any(dim is None for dim in shape):
        raise ConfigError(
            "dataset",
            dataset,
            f"images have variable shape {shape}; give --image_size=H,W (image_size) to resize them to one size",
        )
    names = tuple(label_feature.names) if getattr(label_feature, "names", None) else None
    return tuple(int(d) for d in shape), int(label_feature.num_classes), names


def _choose_splits(info):
    available = set(info.splits.keys())
    if not available:
        # Split metadata exists only once data is prepared; the reader reports
        # missing data with its own, clearer message.
        return "train", "test"
    for name in _TEST_SPLITS:
        if name in available:
            return "train", name
    return "train[:90%]", "train[90%:]"


def _read_split(dataset, tfds, tfds_name, split, data_dir, seed, *, shuffle):
    read_config = tfds.ReadConfig(shuffle_seed=seed)
    try:
        return tfds.load(
            tfds_name,
            split=split,
            data_dir=data_dir,
            download=False,
            as_supervised=True,
            shuffle_files=shuffle,
            read_config=read_config,
        )
    except AssertionError as err:
        # TFDS signals "not prepared" with an AssertionError.
        where = data_dir or "the TFDS default data_dir (~/tensorflow_datasets)"
        raise ConfigError(
            "dataset",
            dataset,
            f"no prepared data for {tfds_name!r} in {where}; pass --download (download=True) "
            f"on a machine with network access, or run `tfds build {tfds_name}` and point "
            "--data_dir at the result",
        ) from err


def _count(ds):
    cardinality = int(ds.cardinality())
    return cardinality if cardinality >= 0 else None
