"""Folders of images or WAV clips, one subfolder per class, as a source for ``load_dataset("dir:PATH")``.

The layout that ``keras.utils.image_dataset_from_directory`` reads and that most
photo collections come in::

    photos/                       photos/
      daisy/ 001.jpg ...            train/ daisy/ ... roses/ ...
      roses/ 002.png ...            test/  daisy/ ... roses/ ...

Classes are the subfolder names in sorted order (label 0 is the first), images
the ``.bmp``, ``.gif``, ``.jpeg``, ``.jpg`` and ``.png`` files at any depth under
them; other files are not read. With ``train/`` beside ``test/`` (or ``val/``,
``validation/``, in that order of preference) those are the splits. Without, a
fifth of each class's images is held out as the test split, chosen by a hash of
each file's path inside the folder: the same images on every run and every seed,
and adding images to a class does not move the ones already held out.

Each image is decoded (a GIF's first frame), resized to ``image_size`` when one
is given (bilinear, aspect ratio not kept, as Keras' loader resizes) and stored
as 8-bit pixels, so a folder costs one byte per pixel in memory. Without
``image_size`` every image must already have one size. The images come out grey
(one channel) when every file is grey, else RGB; an alpha channel is dropped.
A file that does not decode, an empty class and a test class the training split
lacks are refused by name before anything trains. A folder of ``.wav`` files
instead is read as audio clips (:mod:`kopt.data.audio`).

Example:

>>> import os, tempfile
>>> import numpy as np, tensorflow as tf
>>> root = tempfile.mkdtemp()
>>> for name, value in (("cat", 40), ("dog", 200)):
...     os.makedirs(os.path.join(root, name))
...     for i in range(5):
...         pixels = np.full((6, 4, 3), value + i, "uint8")
...         tf.io.write_file(os.path.join(root, name, f"{i}.png"), tf.io.encode_png(pixels))
>>> x_train, y_train, x_test, y_test, source, classes, levels = folder_arrays("dir:" + root, root, (8, 8))
>>> x_train.shape, x_test.shape, x_train.dtype, classes
((8, 8, 8, 3), (2, 8, 8, 3), dtype('uint8'), ('cat', 'dog'))
"""

import hashlib
import os
import time

import numpy as np
import tensorflow as tf
from absl import logging

from kopt.data.audio import AUDIO_EXTENSIONS
from kopt.data.audio import decode_clips
from kopt.data.info import PIXEL_LEVELS
from kopt.errors import ConfigError
from kopt.errors import first_line

__all__ = ["HELD_OUT", "IMAGE_EXTENSIONS", "TEST_FOLDERS", "folder_arrays", "image_size_of"]

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
_EXTENSIONS = IMAGE_EXTENSIONS + AUDIO_EXTENSIONS
TEST_FOLDERS = ("test", "val", "validation")
HELD_OUT = 0.2  # share of each class held out as the test split when the folder has no split folders
MAX_SIDE = 8192
# A folder whose pixels would take more than this share of the machine's memory is refused.
_MEMORY_SHARE = 0.5
_PROGRESS_EVERY_S = 10.0


def image_size_of(key, value):
    """``value`` as ``(height, width)``: an int (square), ``"H,W"``, ``"N"`` or two ints.

    Raises:
        ConfigError: Naming ``key`` and ``value`` for anything else, or a side
            outside 1..8192.

    Example:

    >>> image_size_of("image_size", "96,128"), image_size_of("image_size", 64)
    ((96, 128), (64, 64))
    """
    parts = value.split(",") if isinstance(value, str) else value
    if isinstance(parts, int | np.integer) and not isinstance(parts, bool):
        parts = [parts, parts]
    try:
        sides = [int(str(part).strip()) for part in parts]
        # In a list (a recipe file's), each side is an integer; only the flag's text is parsed.
        integral = all(
            isinstance(part, str) if isinstance(value, str) else isinstance(part, int | np.integer) for part in parts
        ) and not any(isinstance(part, bool) for part in parts)
    except (TypeError, ValueError):
        sides, integral = [], False
    if len(sides) == 1:
        sides *= 2
    if not integral or len(sides) != 2 or not all(1 <= side <= MAX_SIDE for side in sides):
        raise ConfigError(key, value, f"must be HEIGHT,WIDTH (or one side for a square), each 1 to {MAX_SIDE}")
    return tuple(sides)


def folder_arrays(dataset, path, image_size=None, audio_samples=None):
    """Reads a folder into ``(x_train, y_train, x_test, y_test, source, class_names, pixel_levels)``.

    Args:
        dataset: The dataset name (``"dir:PATH"``), for messages.
        path: The folder.
        image_size: ``(height, width)`` to resize every image to, or ``None``.
        audio_samples: For a folder of WAV clips (:mod:`kopt.data.audio`): pad or
            cut every clip to this many samples; ``None`` pads to the longest.

    Returns:
        ``uint8`` images ``(N, H, W, C)`` (or float32 clips ``(N, samples,
        channels)``), ``int64`` labels, a description of the source, the class
        names in label order, and 255 for images (``None`` for clips).

    Raises:
        ConfigError: For a missing folder, no class folders, an empty class, a
            test class without training examples, a folder mixing images and
            WAV files, a file that does not decode, images of different sizes
            without ``image_size``, pixels that would not fit in memory, or a
            setting for the other kind of file.
    """
    if not path:
        raise ConfigError("dataset", dataset, "give a folder after 'dir:', e.g. dir:photos")
    if not os.path.isdir(path):
        raise ConfigError("dataset", dataset, f"folder not found: {os.path.abspath(path)}")
    root = os.path.abspath(path)
    train_files, test_files, classes, layout = _split_files(dataset, root)
    files = train_files + test_files
    audio = _is_audio(dataset, root, [file for file, _ in files])
    labels = np.array([label for _, label in files], np.int64)
    split = len(train_files)
    counts = f"{len(classes)} classes, {split} training and {len(files) - split} test"
    if audio:
        if image_size is not None:
            raise ConfigError("image_size", list(image_size), f"{dataset} holds WAV clips, not images")
        logging.info("Reading %d WAV clips of %d classes from %s (%s).", len(files), len(classes), root, layout)
        clips, rate = decode_clips(dataset, root, [file for file, _ in files], audio_samples)
        length = "cut or padded" if audio_samples is not None else "padded to the longest"
        source = (
            f"audio folder {root}: {counts} clips ({layout}; {rate} Hz, {clips.shape[2]} channel(s), "
            f"{length}: {clips.shape[1]} samples)"
        )
        return clips[:split], labels[:split], clips[split:], labels[split:], source, tuple(classes), None
    if audio_samples is not None:
        raise ConfigError("audio_samples", audio_samples, f"{dataset} holds images, not WAV clips")
    _check_memory(dataset, files, image_size)
    logging.info("Reading %d images of %d classes from %s (%s).", len(files), len(classes), root, layout)
    images, channels = _decode_all(dataset, root, [file for file, _ in files], image_size)
    size = "x".join(str(side) for side in images.shape[1:3])
    resized = f"resized to {size}" if image_size is not None else f"all {size}"
    source = f"image folder {root}: {counts} images ({layout}; {resized}, {'grey' if channels == 1 else 'RGB'})"
    return images[:split], labels[:split], images[split:], labels[split:], source, tuple(classes), PIXEL_LEVELS


def _is_audio(dataset, root, files):
    wav = [file for file in files if file.lower().endswith(AUDIO_EXTENSIONS)]
    if wav and len(wav) != len(files):
        image = next(file for file in files if not file.lower().endswith(AUDIO_EXTENSIONS))
        raise ConfigError(
            "dataset",
            dataset,
            f"mixes images and WAV clips ({os.path.relpath(image, root)}, {os.path.relpath(wav[0], root)}); "
            "give a folder of one kind",
        )
    return bool(wav)


def _visible_folders(folder):
    return sorted(
        name for name in os.listdir(folder) if not name.startswith(".") and os.path.isdir(os.path.join(folder, name))
    )


def _image_files(folder):
    """Image (or WAV) files under ``folder`` at any depth, as sorted paths."""
    found = []
    for current, folders, names in os.walk(folder):  # links to folders not followed, as Keras' loader
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        found += [
            os.path.join(current, name)
            for name in names
            if not name.startswith(".") and name.lower().endswith(_EXTENSIONS)
        ]
    return sorted(found)


def _split_files(dataset, root):
    """``(train, test, classes, layout)``: ``[(file, label), ...]`` per split."""
    folders = _visible_folders(root)
    if "train" in folders:
        test_name = next((name for name in TEST_FOLDERS if name in folders), None)
        if test_name is None:
            raise ConfigError(
                "dataset",
                dataset,
                f"has a train/ folder but no {'/, '.join(TEST_FOLDERS)}/ beside it to test on; add one, or put the "
                "class folders directly in the folder to hold out a fifth of each class",
            )
        unused = [name for name in TEST_FOLDERS if name in folders and name != test_name]
        if unused:
            logging.warning(
                "%s: testing on %s/; %s/ is not read (validation comes from --validation_split).",
                dataset,
                test_name,
                "/, ".join(unused),
            )
        classes = _class_folders(dataset, os.path.join(root, "train"))
        train = _labelled(dataset, os.path.join(root, "train"), classes, "train")
        extra = sorted(set(_visible_folders(os.path.join(root, test_name))) - set(classes))
        if extra:
            raise ConfigError(
                "dataset", dataset, f"{test_name}/ has class folders {extra} that train/ lacks; train/ has {classes}"
            )
        test = _labelled(dataset, os.path.join(root, test_name), classes, test_name, allow_empty=True)
        if not test:
            raise ConfigError("dataset", dataset, f"{test_name}/ holds no images in class folders {classes}")
        return train, test, classes, f"splits train/ and {test_name}/"
    classes = _class_folders(dataset, root)
    train, test = [], []
    for label, name in enumerate(classes):
        files = _class_files(dataset, os.path.join(root, name), name)
        held = _held_out(root, files)
        train += [(file, label) for file in files if file not in held]
        test += [(file, label) for file in files if file in held]
    return train, test, classes, f"no split folders: {HELD_OUT:.0%} of each class held out by file-name hash"


def _class_folders(dataset, folder):
    classes = _visible_folders(folder)
    loose = [name for name in os.listdir(folder) if name.lower().endswith(_EXTENSIONS)]
    if loose and len(classes) >= 2:
        logging.warning(
            "%s: %d file(s) directly in %s (%s) belong to no class folder and are not read.",
            dataset,
            len(loose),
            folder,
            ", ".join(sorted(loose)[:3]),
        )
    if len(classes) < 2:
        found = f"found {classes}" + (f" and {len(loose)} files outside any class folder" if loose else "")
        raise ConfigError(
            "dataset",
            dataset,
            f"{folder} needs one subfolder per class (at least 2), each holding that class's images or WAV clips; "
            f"{found}",
        )
    return classes


def _class_files(dataset, folder, name, where=""):
    files = _image_files(folder)
    if not files:
        raise ConfigError(
            "dataset",
            dataset,
            f"class folder {where}{name}/ holds no {', '.join(_EXTENSIONS)} files; remove it or add its examples",
        )
    return files


def _labelled(dataset, folder, classes, split, allow_empty=False):
    pairs = []
    for label, name in enumerate(classes):
        if allow_empty and not os.path.isdir(os.path.join(folder, name)):
            continue
        if allow_empty:
            pairs += [(file, label) for file in _image_files(os.path.join(folder, name))]
        else:
            pairs += [(file, label) for file in _class_files(dataset, os.path.join(folder, name), name, f"{split}/")]
    return pairs


def _held_out(root, files):
    """The test share of one class: the files whose path hashes lowest, at least one of two or more."""
    if len(files) < 2:
        return set()
    count = max(1, round(HELD_OUT * len(files)))

    def digest(file):
        return hashlib.sha1(os.path.relpath(file, root).replace(os.sep, "/").encode()).hexdigest()

    return set(sorted(files, key=digest)[:count])


def _check_memory(dataset, files, image_size):
    if image_size is None or not hasattr(os, "sysconf"):
        return  # without a size, the first image's is checked in _decode_all
    _refuse_over_memory(dataset, len(files), image_size, "--image_size")


def _refuse_over_memory(dataset, count, size, advice):
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return
    needed = count * size[0] * size[1] * 3
    if needed > _MEMORY_SHARE * memory:
        raise ConfigError(
            "dataset",
            dataset,
            f"{count} images of {size[0]}x{size[1]} take {needed / 2**30:.1f} GiB as 8-bit pixels, more than half "
            f"of this machine's {memory / 2**30:.1f} GiB; give a smaller {advice}",
        )


def _decode(dataset, root, file, image_size):
    try:
        image = tf.io.decode_image(tf.io.read_file(file), channels=0, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError, tf.errors.UnknownError) as err:
        message = first_line(err)
        raise ConfigError(
            "dataset", dataset, f"{os.path.relpath(file, root)} is not a readable image ({message}); fix or remove it"
        ) from err
    channels = int(image.shape[-1])
    image = image[..., :1] if channels <= 2 else image[..., :3]  # drop alpha
    if image_size is not None:
        resized = tf.image.resize(image, image_size, method="bilinear")
        image = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)
    return image.numpy()


def _decode_all(dataset, root, files, image_size):
    """``(images, channels)``: ``(N, H, W, C)`` uint8, grey if every image is grey."""
    images, all_grey, first, last_log = None, True, None, time.monotonic()
    for index, file in enumerate(files):
        image = _decode(dataset, root, file, image_size)
        if images is None:
            first = (file, image.shape[:2])
            if image_size is None:
                _refuse_over_memory(dataset, len(files), image.shape[:2], "image size with --image_size=H,W")
            images = np.zeros((len(files), *image.shape[:2], 3), np.uint8)
        elif image.shape[:2] != images.shape[1:3]:
            raise ConfigError(
                "dataset",
                dataset,
                f"images differ in size ({os.path.relpath(first[0], root)} is {first[1][0]}x{first[1][1]}, "
                f"{os.path.relpath(file, root)} {image.shape[0]}x{image.shape[1]}); give --image_size=H,W "
                "(your model's input size) to resize them all",
            )
        all_grey = all_grey and image.shape[-1] == 1
        images[index] = image  # a grey image fills all three channels
        if time.monotonic() - last_log > _PROGRESS_EVERY_S:
            logging.info("Read %d of %d images.", index + 1, len(files))
            last_log = time.monotonic()
    if all_grey:
        return np.ascontiguousarray(images[..., :1]), 1
    return images, 3
