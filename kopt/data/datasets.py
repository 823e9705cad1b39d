"""Image-classification datasets as batched ``tf.data`` pipelines.

One entry point, :func:`load_dataset`, turns a dataset name into
``(train, test, info)``. Three sources are understood:

* ``"digits"`` (the default): the UCI handwritten digits embedded in kopt
  (:mod:`kopt.data.digits`; 1,797 grey 8x8 images, 10 classes). It needs no network
  and no other package, so the default ``kopt-optimize`` run, the tests and CI work
  on an offline machine.
* ``"mnist"``, ``"fashion_mnist"``, ``"cifar10"`` and ``"tfds:NAME"`` for any
  TensorFlow Datasets image-classification dataset. Data is read from ``data_dir``
  (TFDS' default when ``None``) and downloaded only when ``download=True``.
* ``"dir:PATH"``: a folder of images (or WAV clips) with one subfolder per class,
  split into ``train/`` and ``test/`` or not (:mod:`kopt.data.folders`).
* ``"npz:PATH"``: a NumPy archive in the layout of ``keras.datasets.mnist``
  (arrays ``x_train``, ``y_train``, ``x_test``, ``y_test``). Besides images it
  holds what sequence and text classifiers read: ``(N, T)`` integer token ids
  (kept as ``int32``, for an ``Embedding``), ``(N, F)`` float features, and
  ``(N, T, F)`` sequences, read like greyscale images (a model that takes
  ``(T, F)`` gets them without the channel axis, see
  :func:`kopt.models.registry.drops_channel_axis`).

Images come out as ``float32`` in ``[0, 1]`` with a channel axis (integer pixels
divided by 255, floats as they are); labels as ``int32`` class indices. Where
the images were grey levels scaled so, ``DatasetInfo.pixel_levels`` is 255: a
model that scales 0-255 pixels itself is fed them times 255 by ``kopt-optimize``
(see :mod:`kopt.models.pixels`). ``image_size`` resizes every image (bilinear),
which a folder of photos of many sizes needs, and which lets a TFDS dataset of
variable-size images load at all.
"""

import os

import numpy as np
import tensorflow as tf

from kopt.data import tfds_source
from kopt.data.audio import MAX_SAMPLES
from kopt.data.checks import MAX_CLASSES
from kopt.data.checks import check_finite_images
from kopt.data.checks import check_labels
from kopt.data.digits import DIGITS_SOURCE
from kopt.data.digits import digits_arrays
from kopt.data.folders import folder_arrays
from kopt.data.folders import image_size_of
from kopt.data.info import PIXEL_LEVELS
from kopt.data.info import DatasetInfo
from kopt.errors import ConfigError

_TFDS_ALIASES = {"mnist": "mnist", "fashion_mnist": "fashion_mnist", "cifar10": "cifar10"}
_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def load_dataset(
    dataset: str = "digits",
    *,
    batch_size: int = 64,
    data_dir: str | os.PathLike | None = None,
    download: bool = False,
    seed: int = 0,
    num_classes: int | None = None,
    image_size: int | tuple | None = None,
    audio_samples: int | None = None,
) -> tuple[tf.data.Dataset, tf.data.Dataset, DatasetInfo]:
    """Loads an image-classification dataset as batched ``tf.data.Dataset`` objects.

    Args:
        dataset: ``"digits"``, ``"mnist"``, ``"fashion_mnist"``, ``"cifar10"``,
            ``"tfds:NAME"``, ``"dir:PATH"`` or ``"npz:PATH"``.
        batch_size: Examples per batch, at least 1.
        data_dir: TFDS data directory; ``None`` uses TFDS' default.
        download: Whether TFDS may download and prepare missing data.
        seed: Seed for shuffling the training split.
        num_classes: The class count, when the labels alone do not show it (a
            class without training examples); ``None`` infers it. Every label
            must lie below it.
        image_size: ``(height, width)`` (or one side, for a square) to resize
            every image to, bilinear; ``None`` keeps their size.
        audio_samples: The length every WAV clip of a ``dir:`` folder is padded
            or cut to; ``None`` pads to the longest clip.

    Returns:
        ``(train, test, info)``: the shuffled, batched training split; the batched
        test split in a fixed order; and a :class:`DatasetInfo`.

    Raises:
        ConfigError: If the name is unknown, a file is missing or malformed, the TFDS
            data is not on disk and ``download`` is false, the dataset is not an
            image-classification dataset, an image holds a NaN or infinity, or
            the labels do not fit the class count (see :mod:`kopt.data.checks`).

    Example:

    >>> train, test, info = load_dataset("digits", batch_size=32)
    >>> info.input_shape, info.num_classes
    ((8, 8, 1), 10)
    """
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ConfigError("batch_size", batch_size, "must be an integer of at least 1")
    if not isinstance(dataset, str) or not dataset:
        raise ConfigError("dataset", dataset, "must be a non-empty string")
    if num_classes is not None and (
        not isinstance(num_classes, int) or isinstance(num_classes, bool) or not 2 <= num_classes <= MAX_CLASSES
    ):
        raise ConfigError("num_classes", num_classes, f"must be an integer from 2 to {MAX_CLASSES}")
    if image_size is not None:
        image_size = image_size_of("image_size", image_size)
    if audio_samples is not None and (
        not isinstance(audio_samples, int) or isinstance(audio_samples, bool) or not 1 <= audio_samples <= MAX_SAMPLES
    ):
        raise ConfigError("audio_samples", audio_samples, f"must be an integer from 1 to {MAX_SAMPLES}")
    if audio_samples is not None and not dataset.startswith("dir:"):
        raise ConfigError(
            "audio_samples", audio_samples, f"sets the length of a dir: folder's WAV clips, not {dataset}'s"
        )
    if dataset.startswith("dir:"):
        *arrays, source, names, levels = folder_arrays(dataset, dataset[len("dir:") :], image_size, audio_samples)
        return _from_arrays(
            dataset, *arrays, source, batch_size, seed, num_classes, pixel_levels=levels, class_names=names
        )
    if dataset == "digits" or dataset.startswith("npz:"):
        *arrays, levels = _embedded_digits() if dataset == "digits" else _npz_arrays(dataset)
        if image_size is not None and arrays[0].ndim != 4:
            raise ConfigError(
                "image_size",
                list(image_size),
                f"resizes images, and {dataset}'s examples are {arrays[0].shape[1:]}, not (height, width, channels)",
            )
        return _from_arrays(dataset, *arrays, batch_size, seed, num_classes, pixel_levels=levels, image_size=image_size)
    if dataset in _TFDS_ALIASES:
        tfds_name = _TFDS_ALIASES[dataset]
    elif dataset.startswith("tfds:") and len(dataset) > len("tfds:"):
        tfds_name = dataset[len("tfds:") :]
    else:
        raise ConfigError(
            "dataset",
            dataset,
            "unknown dataset; use digits, mnist, fashion_mnist, cifar10, tfds:NAME, dir:FOLDER or npz:PATH",
        )
    train, test, info = tfds_source.load_tfds(
        dataset,
        tfds_name,
        batch_size=batch_size,
        data_dir=data_dir,
        download=download,
        seed=seed,
        image_size=image_size,
    )
    if num_classes is not None and num_classes != info.num_classes:
        raise ConfigError("num_classes", num_classes, f"{dataset} has {info.num_classes} classes")
    return train, test, info


def _embedded_digits():
    return (*digits_arrays(), DIGITS_SOURCE, PIXEL_LEVELS)  # grey levels, scaled to [0, 1]


def _npz_arrays(dataset):
    path = dataset[len("npz:") :]
    if not path:
        raise ConfigError("dataset", dataset, "give a file after 'npz:', e.g. npz:mnist.npz")
    if not os.path.isfile(path):
        raise ConfigError("dataset", dataset, f"file not found: {os.path.abspath(path)}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in _NPZ_KEYS if key not in archive.files]
            if missing:
                raise ConfigError(
                    "dataset",
                    dataset,
                    f"the archive lacks arrays {missing}; it needs {list(_NPZ_KEYS)} "
                    "as keras.datasets.mnist writes them",
                )
            arrays = [archive[key] for key in _NPZ_KEYS]
    except ConfigError:
        raise
    except Exception as err:  # np.load raises many types for a corrupt or foreign file.
        raise ConfigError("dataset", dataset, f"not a readable .npz archive ({type(err).__name__}: {err})") from err
    x_train, y_train, x_test, y_test = arrays
    # Integer images are 8-bit pixels, divided by 255 below; token ids and features are not pixels.
    levels = PIXEL_LEVELS if x_train.ndim in (3, 4, 5) and np.issubdtype(x_train.dtype, np.integer) else None
    x_train = _npz_images(dataset, "x_train", x_train)
    x_test = _npz_images(dataset, "x_test", x_test)
    y_train = _npz_labels(dataset, "y_train", y_train, len(x_train))
    y_test = _npz_labels(dataset, "y_test", y_test, len(x_test))
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ConfigError(
            "dataset", dataset, f"x_train images are {x_train.shape[1:]} but x_test images are {x_test.shape[1:]}"
        )
    if x_train.dtype != x_test.dtype:  # token ids in one split, float features in the other
        raise ConfigError(
            "dataset", dataset, f"x_train is read as {x_train.dtype} but x_test as {x_test.dtype}; give both one kind"
        )
    return x_train, y_train, x_test, y_test, f"npz archive {os.path.abspath(path)}", levels


def _npz_images(dataset, key, images):
    if images.ndim == 2 and len(images):
        return _npz_vectors(dataset, key, images)
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if images.ndim not in (4, 5) or len(images) == 0:
        raise ConfigError(
            "dataset",
            dataset,
            f"{key} must be a non-empty (N, H, W) or (N, H, W, C) array of images, (N, T, H, W, C) clips of frames, "
            f"or (N, T) token ids or (N, F) features, got shape {images.shape}",
        )
    if np.issubdtype(images.dtype, np.integer):
        # Integer images are 8-bit pixels, as keras.datasets stores them.
        return (images.astype(np.float32) / 255.0).astype(np.float32)
    if np.issubdtype(images.dtype, np.floating):
        with np.errstate(over="ignore"):  # values beyond float32 become inf, which the finiteness check names
            return images.astype(np.float32)
    raise ConfigError("dataset", dataset, f"{key} has dtype {images.dtype}; expected integers or floats")


def _npz_vectors(dataset, key, vectors):
    """(N, T) integer token ids stay integers (an Embedding reads them); (N, F) floats become float32."""
    if np.issubdtype(vectors.dtype, np.integer):
        low, high = int(vectors.min()), int(vectors.max())
        if low < 0 or high > np.iinfo(np.int32).max:
            raise ConfigError(
                "dataset",
                dataset,
                f"{key} holds (N, T) integer token ids from {low} to {high}; ids must lie in 0 .. 2**31 - 1",
            )
        return vectors.astype(np.int32)
    if np.issubdtype(vectors.dtype, np.floating):
        with np.errstate(over="ignore"):
            return vectors.astype(np.float32)
    raise ConfigError("dataset", dataset, f"{key} has dtype {vectors.dtype}; expected integers or floats")


def _npz_labels(dataset, key, labels, expected_count):
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ConfigError(
            "dataset",
            dataset,
            f"{key} must be a 1-D array of integer class indices, got shape {labels.shape} and dtype {labels.dtype}",
        )
    if len(labels) != expected_count:
        raise ConfigError("dataset", dataset, f"{key} has {len(labels)} labels for {expected_count} images")
    return labels  # Cast to int32 only after the range check.


def _from_arrays(
    name,
    x_train,
    y_train,
    x_test,
    y_test,
    source,
    batch_size,
    seed,
    num_classes,
    *,
    pixel_levels,
    image_size=None,
    class_names=None,
):
    """Batched datasets of in-memory arrays; ``uint8`` images (a folder's) become float32 in [0, 1] per batch."""
    check_finite_images(name, "x_train", x_train)
    check_finite_images(name, "x_test", x_test)
    num_classes = check_labels(name, y_train, y_test, num_classes)
    if class_names is not None and len(class_names) != num_classes:
        raise ConfigError("num_classes", num_classes, f"{name} has {len(class_names)} classes: {list(class_names)}")
    y_train, y_test = y_train.astype(np.int32), y_test.astype(np.int32)
    prepare = _batch_preparation(x_train.dtype, image_size)
    train = (
        tf.data.Dataset.from_tensor_slices((x_train, y_train))
        .shuffle(len(x_train), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
    )
    test = tf.data.Dataset.from_tensor_slices((x_test, y_test)).batch(batch_size)
    if prepare is not None:
        train, test = (split.map(prepare, num_parallel_calls=tf.data.AUTOTUNE) for split in (train, test))
    input_shape = tuple(int(d) for d in x_train.shape[1:])
    if image_size is not None:
        input_shape = (*image_size, input_shape[-1])
    info = DatasetInfo(
        name=name,
        input_shape=input_shape,
        num_classes=num_classes,
        train_examples=len(x_train),
        test_examples=len(x_test),
        source=source if image_size is None else f"{source}, resized to {image_size[0]}x{image_size[1]}",
        pixel_levels=pixel_levels,
        class_names=class_names,
    )
    return train.prefetch(tf.data.AUTOTUNE), test.prefetch(tf.data.AUTOTUNE), info


def _batch_preparation(dtype, image_size):
    """The per-batch map: 8-bit pixels to [0, 1] (the same float32 division as the npz path), then a resize."""
    steps = []
    if dtype == np.uint8:
        steps.append(lambda x: tf.cast(x, tf.float32) / 255.0)
    if image_size is not None:
        steps.append(lambda x: tf.image.resize(x, image_size, method="bilinear"))
    if not steps:
        return None

    def prepare(x, y):
        for step in steps:
            x = step(x)
        return x, y

    return prepare
