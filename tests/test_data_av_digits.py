"""AV digits: the tables' counts and columns, splits disjoint on decoded content, voices disjoint."""
import shutil
from collections import Counter

import numpy as np
import pytest
from datasets import Dataset

from mmcourse.data import av_digits as AV
from mmcourse.data.splits import assert_disjoint, audio_hash

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng not installed (sudo apt-get install espeak-ng)")
LIMIT = int(AV.MAX_SECONDS * AV.SAMPLE_RATE)


def words_table(rows: list[tuple[np.ndarray, int, str]]) -> Dataset:
    """A small speech table from (wave, label, voice) rows, as the loaders make them."""
    return AV._speech_dataset([AV._speech_row(w, label, str(label), "xx", voice, "test") for w, label, voice in rows],
                              "test words")


def test_speech_row_trims_cuts_to_the_middle_second_and_normalises():
    rng = np.random.default_rng(0)
    long_word = np.concatenate([np.zeros(800), 0.3 * rng.standard_normal(3 * LIMIT // 2), np.zeros(800)])
    row = AV._speech_row(long_word.astype(np.float32), 4, "4", "fr-fr", "m1", "espeak-ng")
    assert len(row["wave"]) == LIMIT and np.abs(row["wave"]).max() == pytest.approx(1.0)
    assert row["audio_sha"] == audio_hash(row["wave"], AV.SAMPLE_RATE)
    short = AV._speech_row(np.r_[np.zeros(500), 0.5 * np.ones(100), np.zeros(500)].astype(np.float32),
                           1, "1", "de", "f2", "espeak-ng")
    assert len(short["wave"]) < 200
    for silence in (np.zeros(1000, dtype=np.float32), np.full(1000, 1e-4, dtype=np.float32)):
        with pytest.raises(ValueError, match="silent"):
            AV._speech_row(silence, 0, "0", "de", "f2", "espeak-ng")


def test_fixed_waves_centre_each_word_on_a_silent_track():
    words = words_table([(np.ones(2000, dtype=np.float32), 0, "a"), (np.ones(LIMIT, dtype=np.float32), 1, "b")])
    centred = AV.fixed_waves(words)
    assert centred.shape == (2, LIMIT) and centred.dtype == np.float32
    assert np.flatnonzero(centred[0])[[0, -1]].tolist() == [3000, 4999] and centred[1].min() == 1.0
    short = AV.fixed_waves(words, seconds=0.5)                # a longer word keeps its middle
    assert short.shape == (2, LIMIT // 2) and (short[0] > 0).sum() == 2000 and short[1].min() == 1.0


def test_voice_splits_keep_every_voice_and_equal_recordings_on_one_side():
    rng = np.random.default_rng(1)
    shared = rng.standard_normal(600).astype(np.float32)
    rows = [(rng.standard_normal(600).astype(np.float32), d, f"v{v}") for v in range(10) for d in range(3)]
    rows += [(shared, 0, "v0"), (shared, 0, "v7")]        # v0 and v7 recorded one identical word
    words = words_table(rows)
    for seed in range(5):
        parts = AV.voice_splits(words, seed=seed)
        assert_disjoint(parts, ["voice", "audio_sha"])
        side = {v: name for name, part in parts.items() for v in part["voice"]}
        assert side["v0"] == side["v7"] and sum(len(p) for p in parts.values()) == len(words)


@needs_espeak
def test_digit_and_letter_variants_are_fixed_and_disjoint():
    digits, letters = AV.espeak_variants()
    assert (len(digits), len(letters)) == (AV.DIGIT_VARIANTS, AV.LETTER_VARIANTS)
    assert not set(digits) & set(letters) and (digits, letters) == AV.espeak_variants()


def test_word_settings_are_reproducible_and_in_range():
    a = AV._word_settings("7", "fr-fr", "m3")
    assert a == AV._word_settings("7", "fr-fr", "m3") and a != AV._word_settings("7", "fr-fr", "m4")
    assert AV.PITCHES[0] <= a["pitch"] <= AV.PITCHES[1] and AV.SPEEDS[0] <= a["speed"] <= AV.SPEEDS[1]


def test_handwriting_has_500_of_each_digit_and_splits_by_pixels():
    images = AV.load_handwriting()
    assert len(images) == 5000 and Counter(images["label"]) == {d: 500 for d in range(10)}
    pixels, labels = AV.image_arrays(images)
    assert pixels.shape == (5000, 28, 28) and pixels.dtype == np.uint8 and pixels.max() == 255
    assert labels.dtype == np.int64
    parts = AV.handwriting_splits(images, seed=0)
    assert_disjoint(parts, ["pixel_sha"])
    assert sum(len(p) for p in parts.values()) == 5000 and 900 <= len(parts["test"]) <= 1100


@needs_espeak
def test_spoken_digits_and_letters_every_word_of_every_voice_and_no_voice_in_both():
    digits, letters = AV.load_spoken_digits(), AV.load_spoken_letters()
    assert len(digits) == AV.N_DIGITS * len(AV.DIGIT_LANGUAGES) * AV.DIGIT_VARIANTS
    assert len(letters) == AV.N_LETTERS * len(AV.LETTER_LANGUAGES) * AV.LETTER_VARIANTS
    for table, n_texts in ((digits, AV.N_DIGITS), (letters, AV.N_LETTERS)):
        assert set(Counter(table["voice"]).values()) == {n_texts * len(set(table["language"]))}
        assert set(table["label"]) == set(range(n_texts)) and set(table["source"]) == {"espeak-ng"}
        lengths = [len(w) for w in table.with_format("numpy")["wave"]]
        assert max(lengths) <= LIMIT and min(lengths) > 0.05 * AV.SAMPLE_RATE  # the shortest: a fast "1"
        parts = AV.voice_splits(table, seed=0)
        assert_disjoint(parts, ["voice", "audio_sha"])
        assert all(len(set(p["voice"])) >= 2 for p in parts.values())
    assert not set(digits["voice"]) & set(letters["voice"])
    assert not set(digits["audio_sha"]) & set(letters["audio_sha"])
    assert digits[17]["text"] == str(digits[17]["label"]) and letters[30]["text"] == AV.LETTERS[letters[30]["label"]]


def test_human_digits_are_tux_paints_speakers(tuxpaint):
    human = AV.load_human_digits()
    assert len(human) == 210 and len(set(human["voice"])) == 22 and set(human["source"]) == {"tuxpaint"}
    assert set(human["label"]) == set(range(10)) and len(set(human["audio_sha"])) == len(human)
    assert max(len(w) for w in human.with_format("numpy")["wave"]) <= LIMIT
