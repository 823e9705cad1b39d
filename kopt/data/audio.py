"""WAV clips of a ``dir:`` folder as one array: a keyword spotter's data (:mod:`kopt.data.folders`).

Speech Commands and most keyword-spotting collections are folders of short WAV
files, one folder per word. Each clip is decoded to float samples in [-1, 1]
(``tf.audio.decode_wav``) and zero-padded at its end to the longest clip, or padded
or cut to ``samples`` when that is given, as ``keras.utils.audio_dataset_from_directory``
does with ``output_sequence_length``. Every clip must have one sample rate and one
channel count: a model hears the rate it was trained on, so a mixed folder is
refused by name rather than resampled.

Example:

>>> import os, tempfile
>>> import numpy as np, tensorflow as tf
>>> root = tempfile.mkdtemp()
>>> files = []
>>> for length in (100, 160):
...     files.append(os.path.join(root, f"{length}.wav"))
...     tone = np.sin(np.arange(length) / 5.0).astype("float32")[:, None]
...     tf.io.write_file(files[-1], tf.audio.encode_wav(tone, 16000))
>>> clips, rate = decode_clips("dir:x", root, files)
>>> clips.shape, clips.dtype, rate
((2, 160, 1), dtype('float32'), 16000)
"""

import os

import numpy as np
import tensorflow as tf

from kopt.errors import ConfigError
from kopt.errors import first_line

__all__ = ["AUDIO_EXTENSIONS", "MAX_SAMPLES", "decode_clips"]

AUDIO_EXTENSIONS = (".wav",)
MAX_SAMPLES = 10_000_000  # about 10 minutes at 16 kHz: longer is a recording to cut into clips, not a clip


def decode_clips(dataset, root, files, samples=None):
    """Returns ``(clips, sample_rate)``: ``(N, samples, channels)`` float32 clips.

    Args:
        dataset: The dataset name, for messages.
        root: The folder, for the file names in messages.
        files: The WAV files, in label order.
        samples: Pad (with zeros) or cut every clip to this many samples; ``None``
            pads to the longest clip.

    Raises:
        ConfigError: A file that does not decode, clips of different sample rates
            or channel counts, or a clip longer than :data:`MAX_SAMPLES` without
            ``samples``.
    """
    decoded, first = [], None
    for file in files:
        clip, rate = _decode(dataset, root, file)
        if first is None:
            first = (file, rate, clip.shape[1])
        elif (rate, clip.shape[1]) != first[1:]:
            raise ConfigError(
                "dataset",
                dataset,
                f"clips differ: {os.path.relpath(first[0], root)} is {first[1]} Hz with {first[2]} channel(s), "
                f"{os.path.relpath(file, root)} {rate} Hz with {clip.shape[1]}; convert them to one rate and channel "
                "count (a model hears the rate it was trained on)",
            )
        decoded.append(clip if samples is None else clip[:samples])
    length = samples if samples is not None else max(len(clip) for clip in decoded)
    if length > MAX_SAMPLES:
        raise ConfigError(
            "dataset",
            dataset,
            f"the longest clip has {length} samples; cut recordings into clips, or give --audio_samples=N",
        )
    clips = np.zeros((len(decoded), length, first[2]), np.float32)
    for index, clip in enumerate(decoded):
        clips[index, : len(clip)] = clip
    return clips, first[1]


def _decode(dataset, root, file):
    try:
        clip, rate = tf.audio.decode_wav(tf.io.read_file(file))
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError, tf.errors.UnknownError) as err:
        message = first_line(err)
        raise ConfigError(
            "dataset",
            dataset,
            f"{os.path.relpath(file, root)} is not a readable WAV file ({message}); fix or remove it",
        ) from err
    if clip.shape[0] == 0:
        raise ConfigError("dataset", dataset, f"{os.path.relpath(file, root)} holds no samples; remove it")
    return clip.numpy(), int(rate)
