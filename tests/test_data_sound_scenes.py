from pathlib import Path

import numpy as np
import pytest
from datasets import Dataset
from PIL import Image, ImageDraw

from mmcourse.data import sound_scenes as SS
from mmcourse.data.splits import assert_disjoint

SR = 8000
STAMPS_INSTALLED = Path("/usr/share/tuxpaint/stamps/animals/birds/duck.ogg").exists()
needs_stamps = pytest.mark.skipif(not STAMPS_INSTALLED, reason="tuxpaint-stamps-default not installed")


# ---------------------------------------------------------------- mixing

def test_place_pads_and_cuts():
    w = np.arange(1, 5, dtype=np.float32)                       # 1 2 3 4
    assert SS.place(w, 2, 8).tolist() == [0, 0, 1, 2, 3, 4, 0, 0]
    assert SS.place(w, -2, 3).tolist() == [3, 4, 0]             # starts before the clip
    assert SS.place(w, 6, 8).tolist() == [0] * 6 + [1, 2]       # runs past its end
    with pytest.raises(ValueError, match="misses"):
        SS.place(w, 8, 8)


def test_rms_db_hand_values():
    assert SS.rms_db(np.full(100, 0.1)) == pytest.approx(-20.0)
    t = np.arange(8000) / 8000
    assert SS.rms_db(np.sin(2 * np.pi * 100 * t)) == pytest.approx(-3.0103, abs=1e-3)


def test_mix_keeps_each_promised_level():
    rng = np.random.default_rng(0)
    # A constant sound scaled to -20 dBFS is 0.1 everywhere it plays: checked by hand.
    alone = SS.mix_sounds([np.full(50, 0.7)], 100, [-20.0], [30])
    assert np.allclose(alone[30:80], 0.1) and not alone[:30].any() and not alone[80:].any()

    waves = [rng.standard_normal(n) * a for n, a in ((3000, 0.2), (12000, 0.9), (500, 0.01))]
    levels, offsets, length = [-18.0, -25.0, -30.0], [1000, -4000, 7800], 8000
    mix = SS.mix_sounds(waves, length, levels, offsets)
    for w, level, offset in zip(waves, levels, offsets):
        single = SS.mix_sounds([w], length, [level], [offset])
        start, stop = max(offset, 0), min(offset + len(w), length)
        assert SS.rms_db(single[start:stop]) == pytest.approx(level, abs=1e-3)  # the level it promises
        mix = mix - single
    assert np.abs(mix).max() < 1e-5                              # and the mix is their plain sum


def test_noise_level_and_determinism():
    noise = SS.mix_sounds([], 8000, [], [], noise_db=-40.0, rng=np.random.default_rng(1))
    assert SS.rms_db(noise) == pytest.approx(-40.0, abs=1e-3)
    again = SS.mix_sounds([], 8000, [], [], noise_db=-40.0, rng=np.random.default_rng(1))
    assert np.array_equal(noise, again)


def test_mix_refuses_mismatched_lists_and_silence():
    with pytest.raises(ValueError, match="one level and one offset"):
        SS.mix_sounds([np.ones(10)], 20, [-20.0, -10.0], [0])
    with pytest.raises(ValueError, match="silent"):
        SS.mix_sounds([np.zeros(10)], 20, [-20.0], [0])


def test_random_offset_keeps_sound_in_clip():
    rng = np.random.default_rng(0)
    for _ in range(200):
        short = SS.random_offset(300, 1000, rng)
        assert 0 <= short <= 700
        long = SS.random_offset(3000, 1000, rng)
        assert -2000 <= long <= 0


def test_trim_silence():
    w = np.concatenate([np.full(10, 1e-4), [0.5, -1.0, 0.2], np.zeros(5)])
    assert SS.trim_silence(w).tolist() == pytest.approx([0.5, -1.0, 0.2])


def test_sound_kind():
    assert SS.sound_kind("animals/birds") == "animal"
    assert SS.sound_kind("symbols/math") == "voice"
    assert SS.sound_kind("household/tools") == "object"
    assert SS.sound_kind("seasonal/halloween") is None
    assert SS.sound_kind("symbols/money") is None
    assert SS.family_of("animals/mammals/cats") == "animals/mammals"


# ---------------------------------------------------------------- clips from hand-made stamps

def fake_stamps(n: int = 5) -> Dataset:
    rows = []
    for i in range(n):
        image = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
        ImageDraw.Draw(image).ellipse([4, 4, 35, 35], fill=(40 * i, 200, 100, 255))
        t = np.arange(int(SR * (0.3 + 0.4 * i))) / SR
        rows.append({"id": f"fake/{i}", "image": image, "caption": f"Thing {i}.", "category": "fake/x",
                     "family": "fake/x", "top_category": "fake", "kind": SS.KINDS[i % 3],
                     "wave": (np.sin(2 * np.pi * 200 * (i + 1) * t)).astype(np.float32),
                     "sample_rate": SR, "image_sha": f"img{i}", "sound_sha": f"snd{i}"})
    return Dataset.from_list(rows, features=SS.SOUND_STAMP_FEATURES)


def test_make_clips_columns_masks_and_sound():
    stamps = fake_stamps()
    clips = SS.make_clips(stamps, 6, seed=3, min_objects=2, max_objects=3, one_sounds=True, size=48)
    assert clips.features == SS.CLIP_FEATURES
    images, waves = SS.clip_arrays(clips)
    assert images.shape == (6, 3, 48, 48) and images.dtype == np.uint8 and waves.shape == (6, SR)
    for row, masks in zip(clips, SS.object_masks(clips)):
        k = len(row["stamp_ids"])
        assert 2 <= k <= 3 and len(set(row["stamp_ids"])) == k
        assert sum(row["sounding"]) == 1                                  # exactly one object sounds
        levels = np.array(row["levels_db"])
        assert np.isnan(levels[~np.array(row["sounding"])]).all()
        assert -28 <= levels[np.array(row["sounding"])][0] <= -16
        for mask, (x0, y0, x1, y1) in zip(masks, row["boxes"]):
            ys, xs = np.nonzero(mask)
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x0, y0, x1, y1)
    same = SS.make_clips(stamps, 6, seed=3, min_objects=2, max_objects=3, one_sounds=True, size=48)
    assert np.array_equal(SS.clip_arrays(same)[1], waves) and same["stamp_ids"] == clips["stamp_ids"]


def test_all_objects_sound_by_default_and_errors():
    stamps = fake_stamps()
    clips = SS.make_clips(stamps, 4, seed=0, size=48)
    assert all(all(s) for s in clips["sounding"])
    with pytest.raises(ValueError, match="distinct objects"):
        SS.make_clips(stamps.select(range(2)), 2, max_objects=3)


def test_sound_clips_layout():
    waves, index = SS.sound_clips(fake_stamps(3), copies=2, seed=0, seconds=0.5)
    assert waves.shape == (6, SR // 2) and index.tolist() == [0, 1, 2, 0, 1, 2]


def test_leave_out_drops_shared_ids_and_images():
    stamps = fake_stamps()
    other = stamps.select([1]).map(lambda r: {"id": "elsewhere/1"})          # same picture, new name
    kept = SS.leave_out(stamps, stamps.select([3]), other)
    assert kept["id"] == ["fake/0", "fake/2", "fake/4"]


# ---------------------------------------------------------------- the real stamps

@needs_stamps
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_real_splits_are_leak_free(seed):
    stamps = SS.load_sound_stamps()
    parts = SS.make_splits(stamps, seed)
    assert sum(len(p) for p in parts.values()) == len(stamps)
    assert_disjoint(parts, ["id", "image_sha", "sound_sha"])
    for kind in SS.KINDS:
        few = parts["transfer_train"].filter(lambda k: k == kind, input_columns="kind")
        assert len(set(few["sound_sha"])) == 3                                # three labelled sounds per kind
        assert kind in parts["transfer_test"]["kind"]
    for name in ("transfer_train", "transfer_test"):
        assert None not in parts[name]["kind"]
    loc = SS.localization_splits(stamps, seed)
    assert list(loc) == ["train", "validation", "test"]
    assert_disjoint(loc, ["id", "image_sha", "sound_sha"])


@needs_stamps
def test_real_sound_stamps():
    stamps = SS.load_sound_stamps()
    assert len(stamps) > 100 and set(stamps["sample_rate"]) == {SS.SAMPLE_RATE}
    for wave in stamps.select(range(0, len(stamps), 10))["wave"]:
        assert np.abs(np.array(wave)).max() == pytest.approx(1.0)
    assert "left out 4 silent files" in stamps.info.description


def test_array_column_takes_a_block_or_rows_of_any_length():
    from mmcourse.data.sound_scenes import array_column
    block = np.arange(6, dtype=np.float64).reshape(2, 3)
    assert array_column(block)["wave"] == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    ragged = array_column([np.ones(2), np.zeros(0), np.arange(3)], name="x")
    assert ragged["x"] == [[1.0, 1.0], [], [0.0, 1.0, 2.0]] and ragged.features["x"].feature.dtype == "float32"
