"""Folders of WAV clips (``dir:PATH``): a keyword spotter's data, from the folder to an int8 file."""

import doctest
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from kopt import ConfigError
from kopt.data import audio
from kopt.data import load_dataset
from kopt.data.folders import folder_arrays
from kopt.pipeline import Recipe
from kopt.pipeline import TechniqueSpec
from kopt.pipeline import run

RATE = 8000


def _tone(frequency, length, rate=RATE, channels=1, seed=0):
    """A tone with a little noise, as float32 samples ``(length, channels)``."""
    rng = np.random.default_rng(seed)
    t = np.arange(length) / rate
    wave = 0.5 * np.sin(2 * np.pi * frequency * t) + 0.05 * rng.normal(size=length)
    return np.repeat(wave.astype(np.float32)[:, None], channels, axis=1).clip(-1, 1)


def _write(path, samples, rate=RATE):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tf.io.write_file(path, tf.audio.encode_wav(samples, rate))


def _words(root, per_class, lengths=(800,)):
    """Three 'words', tones of 300, 900 and 2000 Hz, of the given lengths in turn."""
    for label, frequency in enumerate((300, 900, 2000)):
        for index in range(per_class):
            length = lengths[index % len(lengths)]
            _write(os.path.join(root, f"word{label}", f"{index:03d}.wav"), _tone(frequency, length, seed=index))


def test_clips_are_padded_to_the_longest_and_keep_their_samples(tmp_path):
    _words(str(tmp_path), 5, lengths=(600, 800))
    x_train, y_train, x_test, y_test, source, classes, levels = folder_arrays("dir:w", str(tmp_path))
    assert classes == ("word0", "word1", "word2") and levels is None
    assert x_train.shape == (12, 800, 1) and x_test.shape == (3, 800, 1) and x_train.dtype == np.float32
    assert "audio folder" in source and "8000 Hz, 1 channel(s), padded to the longest: 800 samples" in source
    # The first training clip of word0 is file 001 or 002..., decoded exactly; a 600-sample clip ends in zeros.
    decoded = tf.audio.decode_wav(tf.io.read_file(str(tmp_path / "word0" / "000.wav")))[0].numpy()
    clips = np.concatenate([x_train, x_test])
    matches = [clip for clip in clips if np.array_equal(clip[:600], decoded)]
    assert len(matches) == 1 and not matches[0][600:].any()


def test_audio_samples_pads_or_cuts_every_clip(tmp_path):
    _words(str(tmp_path), 3, lengths=(600, 1000))
    _, test, info = load_dataset(f"dir:{tmp_path}", audio_samples=700, batch_size=2)
    clips, labels = next(iter(test))
    assert info.input_shape == (700, 1) and clips.shape[1:] == (700, 1) and info.pixel_levels is None
    assert info.class_names == ("word0", "word1", "word2") and "cut or padded: 700 samples" in info.source


@pytest.mark.parametrize(
    "second, message",
    [
        (lambda: (_tone(300, 800), 16000), r"clips differ: .* is 8000 Hz with 1 channel\(s\), .* 16000 Hz with 1"),
        (lambda: (_tone(300, 800, channels=2), RATE), r"8000 Hz with 2; convert them to one rate and channel count"),
    ],
)
def test_clips_of_another_rate_or_channel_count_are_refused(tmp_path, second, message):
    _words(str(tmp_path), 2)
    samples, rate = second()
    _write(str(tmp_path / "word1" / "zz.wav"), samples, rate)
    with pytest.raises(ConfigError, match=message):
        load_dataset(f"dir:{tmp_path}")


def test_bad_files_and_settings_are_refused_by_name(tmp_path):
    _words(str(tmp_path / "ok"), 2)
    (tmp_path / "ok" / "word2" / "broken.wav").write_bytes(b"RIFF not really")
    with pytest.raises(ConfigError, match=r"word2/broken.wav is not a readable WAV file"):
        load_dataset(f"dir:{tmp_path / 'ok'}")
    _words(str(tmp_path / "mixed"), 2)
    tf.io.write_file(str(tmp_path / "mixed" / "word0" / "photo.png"), tf.io.encode_png(np.zeros((4, 4, 3), np.uint8)))
    with pytest.raises(ConfigError, match=r"mixes images and WAV clips \(word0/photo.png, word0/\d+.wav\)"):
        load_dataset(f"dir:{tmp_path / 'mixed'}")
    _words(str(tmp_path / "words"), 2)
    with pytest.raises(ConfigError, match="holds WAV clips, not images") as err:
        load_dataset(f"dir:{tmp_path / 'words'}", image_size=32)
    assert err.value.key == "image_size"
    with pytest.raises(ConfigError, match="must be an integer from 1 to 10000000") as err:
        load_dataset(f"dir:{tmp_path / 'words'}", audio_samples=0)
    with pytest.raises(ConfigError, match="sets the length of a dir: folder's WAV clips, not digits's") as err:
        load_dataset("digits", audio_samples=16000)
    assert err.value.key == "audio_samples"
    tf.io.write_file(str(tmp_path / "img" / "a" / "1.png"), tf.io.encode_png(np.zeros((4, 4, 3), np.uint8)))
    tf.io.write_file(str(tmp_path / "img" / "b" / "1.png"), tf.io.encode_png(np.zeros((4, 4, 3), np.uint8)))
    with pytest.raises(ConfigError, match="holds images, not WAV clips"):
        load_dataset(f"dir:{tmp_path / 'img'}", audio_samples=100)


def test_a_keyword_spotter_trains_from_its_folder_to_an_int8_file(tmp_path):
    """A model that takes ``(samples,)`` gets the clips without their channel axis, through QAT to int8."""
    _words(str(tmp_path / "words"), 30)
    inputs = keras.Input((800,), name="waveform")
    x = keras.layers.Reshape((800, 1))(inputs)
    x = keras.layers.Conv1D(8, 9, strides=4, activation="relu", name="conv1")(x)
    x = keras.layers.Conv1D(16, 5, strides=2, activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    keras.Model(inputs, keras.layers.Dense(3, name="logits")(x), name="kws").save(tmp_path / "kws.keras")
    report = run(
        Recipe(
            dataset=f"dir:{tmp_path / 'words'}",
            audio_samples=800,
            model=str(tmp_path / "kws.keras"),
            epochs=3,
            batch_size=16,
            learning_rate=3e-3,
            export_dir=str(tmp_path / "out"),
            techniques=(TechniqueSpec("qat", {"epochs": 1}),),
        )
    )
    assert report["dataset"]["input_shape"] == [800] and report["dataset"]["class_names"] == ["word0", "word1", "word2"]
    optimized = report["optimized"]
    assert optimized["tflite_mode"] == "int8" and optimized["tflite_agreement"] >= 0.95, optimized
    assert report["dataset"]["test_examples"] == 18
    # Three tones are easy to tell apart (1.0 at seed 0): labels shuffled against the folders would score a third.
    assert optimized["tflite_accuracy"] >= 0.9, optimized


def test_the_module_example_runs():
    assert doctest.testmod(audio).failed == 0
