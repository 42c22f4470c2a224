import time
from pathlib import Path

import pyarrow.compute as pc
import pytest
import torch
import torchaudio
from PIL import Image

from mmcourse.data import tuxpaint
from mmcourse.data.audio_io import load_audio
from mmcourse.data.splits import assert_disjoint, audio_hash, content_hash, split_by_group
from mmcourse.data.tuxpaint import (STAMP_FEATURES, caption_tags, load_spoken_descriptions,
                                    load_stamps, parse_caption_text, stamps_root)

DUCK_TXT = "\n".join([
    "A duck.",
    "fr.utf8=Un canard.",
    "el.utf8=Πάπια.",
    "zh_CN.utf8=鸭子。",
    "ar.utf8=بطة.",
    "",
    "this line is not a translation",
])


def ogg_bytes(seconds: float = 0.25, sr: int = 16000) -> bytes:
    t = torch.arange(int(seconds * sr)) / sr
    return encode(0.3 * torch.sin(2 * torch.pi * 440 * t), sr)


def encode(wave: torch.Tensor, sr: int, fmt: str = "ogg") -> bytes:
    """`wave` (time,) as an Ogg Vorbis (or WAV) file; each Ogg gets a random stream serial number."""
    from torchcodec.encoders import AudioEncoder
    return bytes(AudioEncoder(wave[None], sample_rate=sr).to_tensor(fmt).numpy())


def voice(seconds: float = 1.0, sr: int = 16000, f0: tuple = (140.0, 220.0), seed: int = 0) -> torch.Tensor:
    """A speech-like test sound: a gliding harmonic tone in three syllables, with a little noise."""
    t = torch.arange(int(seconds * sr)) / sr
    phase = 2 * torch.pi * torch.cumsum(torch.linspace(*f0, len(t)), 0) / sr
    tone = sum(torch.sin(k * phase) / k for k in range(1, 16))
    noise = torch.randn(len(t), generator=torch.Generator().manual_seed(seed))
    return 0.3 * torch.sin(3 * torch.pi * t / seconds).abs() * (tone / 3 + 0.05 * noise)


def png(path: Path, size=(40, 30), mode="RGBA") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size).save(path)


def write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A private stamps folder and cache; returns the stamps folder."""
    root = tmp_path / "stamps"
    root.mkdir()
    monkeypatch.setenv("MMCOURSE_TUXPAINT_DIR", str(root))
    monkeypatch.setenv("MMCOURSE_CACHE", str(tmp_path / "cache"))
    return root


@pytest.fixture
def fake(env):
    """Three good stamps and one of every kind of bad file."""
    ogg = ogg_bytes()
    birds = env / "animals" / "birds"
    png(birds / "duck.png", size=(600, 300))
    write(birds / "duck.txt", DUCK_TXT)
    write(birds / "duck.ogg", ogg)
    write(birds / "duck_desc.ogg", ogg)
    write(birds / "duck_desc_fr.ogg", ogg)
    write(birds / "duck_desc_lt.ogg", ogg)          # no Lithuanian caption: English text
    write(birds / "duck_desc_el.ogg", b"")          # empty: dropped, counted
    write(birds / "duck_desc_nl.ogg", b"OggS not really")  # does not decode: dropped, counted
    png(birds / "duck_mirror.png")                  # a mirrored copy, not a stamp
    png(env / "animals" / "cat.png", size=(50, 40), mode="LA")
    write(env / "animals" / "cat.txt", "\ufeffTwo cats\r\nde.utf8=Zwei Katzen\r\n")  # BOM, CRLF
    write(env / "animals" / "cat.wav", b"junk, not a WAV file")  # dropped, counted
    food = env / "food"
    png(food / "pear.png")
    write(food / "pear.svg", "<svg/>")              # PNG and SVG: the PNG is used
    write(food / "pear.txt", "A pear.")
    write(food / "apple.svg", "<svg/>")             # SVG only: skipped, counted
    write(food / "apple.txt", "An apple.")
    png(food / "nocap.png")                         # no caption: skipped, counted
    png(food / "latin1.png")
    write(food / "latin1.txt", "Caf\xe9.".encode("latin-1"))  # not UTF-8: skipped, counted
    write(food / "broken.png", b"\x89PNG\r\n\x1a\n truncated")  # unreadable: skipped, counted
    write(food / "broken.txt", "A broken image.")
    png(food / "blank.png")
    write(food / "blank.txt", "\nfr.utf8=Vide.")    # empty English caption: skipped, counted
    return env


# --- captions and tags ---------------------------------------------------------------------

def test_parse_caption_text_keeps_utf8_and_counts_bad_lines():
    caption, translations, bad = parse_caption_text(DUCK_TXT)
    assert caption == "A duck."
    assert translations == [{"lang": "fr", "text": "Un canard."}, {"lang": "el", "text": "Πάπια."},
                            {"lang": "zh_CN", "text": "鸭子。"}, {"lang": "ar", "text": "بطة."}]
    assert bad == 1


def test_parse_caption_text_edge_cases():
    assert parse_caption_text("A calculator.  6x7=42\n") == ("A calculator.  6x7=42", [], 0)
    assert parse_caption_text("") == ("", [], 0)
    caption, translations, bad = parse_caption_text("  A cat. \r\nde=Katze\nfr.utf8=\nca@valencia.utf8= Un gat. ")
    assert caption == "A cat."
    assert translations == [{"lang": "ca@valencia", "text": "Un gat."}]
    assert bad == 2  # "de=" lacks ".utf8", "fr.utf8=" has no text


def test_caption_tags():
    assert caption_tags("Two red apples.", "food/fruit") == ["food", "fruit", "two", "red", "apple"]
    assert caption_tags("A duck.", "animals/birds") == ["animal", "bird", "duck"]
    assert caption_tags("Grandma’s old rag doll.", "household/toys") == [
        "household", "toy", "grandma", "old", "rag", "doll"]
    assert caption_tags("Boxes of berries, glasses and mice on a bus.", "") == [
        "box", "berry", "glass", "mouse", "bus"]
    assert caption_tags("A café crème.", "food/drinks") == ["food", "drink", "café", "crème"]
    assert caption_tags("A US 5 cent piece ($.05).", "symbols/money/us") == [
        "symbol", "money", "us", "cent", "piece"]
    assert caption_tags("A hand.", "people/body_parts") == ["person", "body", "part", "hand"]
    # -s words that are not plurals keep their s
    assert caption_tags("Mars in Christmas clothes.", "clothes/hats") == ["clothes", "hat", "mars", "christmas"]


# --- building from a fake stamps folder ----------------------------------------------------

def test_missing_package_names_package_and_env_var(env, tmp_path, monkeypatch):
    message = (r"tuxpaint-stamps-default.*sudo apt-get install tuxpaint-stamps-default"
               r".*MMCOURSE_TUXPAINT_DIR")
    with pytest.raises(FileNotFoundError, match=message):
        stamps_root()  # the folder exists but is empty
    with pytest.raises(FileNotFoundError, match=message):
        load_stamps()
    monkeypatch.setenv("MMCOURSE_TUXPAINT_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=message):
        load_spoken_descriptions()


def test_no_usable_stamp_is_an_error_with_counts(env):
    png(env / "toys" / "ball.png")
    with pytest.raises(ValueError, match=r"no usable stamps .*1 stamps without a \.txt caption"):
        load_stamps()


def test_fake_stamps_rows_and_skip_counts(fake, capsys):
    ds = load_stamps()
    assert ds.features == STAMP_FEATURES
    assert list(ds.column_names) == list(STAMP_FEATURES)
    assert sorted(ds["id"]) == ["animals/birds/duck", "animals/cat", "food/pear"]
    summary = ds.info.description
    assert capsys.readouterr().out.count(summary) == 1
    for count in ["3 stamps", "1 with sound", "3 spoken descriptions", "1 SVG-only stamps",
                  "1 mirrored/flipped copies", "1 stamps without a .txt caption",
                  "1 caption files not in UTF-8", "1 unreadable images",
                  "1 stamps with an empty English caption", "1 unreadable translation lines",
                  "1 empty audio files", "1 audio files that are not Ogg or WAV",
                  "1 audio files that do not decode"]:
        assert count in summary

    rows = {row["id"]: row for row in ds}
    duck, cat, pear = rows["animals/birds/duck"], rows["animals/cat"], rows["food/pear"]
    assert duck["caption"] == "A duck." and duck["translations"][1] == {"lang": "el", "text": "Πάπια."}
    assert (duck["category"], duck["top_category"]) == ("animals/birds", "animals")
    assert duck["tags"] == ["animal", "bird", "duck"]
    assert duck["image"].mode == "RGBA" and duck["image"].size == (256, 128)  # downscaled
    assert cat["image"].mode == "RGBA" and cat["image"].size == (50, 40)       # never enlarged
    assert cat["caption"] == "Two cats" and cat["translations"] == [{"lang": "de", "text": "Zwei Katzen"}]
    assert (cat["category"], cat["top_category"]) == ("animals", "animals")
    assert cat["sound"] is None and pear["sound"] is None and pear["descriptions"] == []
    wave, sr = load_audio(duck["sound"])
    assert sr == 16000 and 4000 <= len(wave) < 5000  # 0.25 s, plus Vorbis padding
    assert [d["lang"] for d in duck["descriptions"]] == ["en", "fr", "lt"]
    assert load_audio(duck["descriptions"][1]["audio"])[1] == 16000


def test_cache_reloads_without_building_and_rebuild_builds(fake, monkeypatch, capsys):
    first = load_stamps()
    capsys.readouterr()

    def no_build(root):
        raise AssertionError("rebuilt although a cache exists")

    monkeypatch.setattr(tuxpaint, "_build_stamps", no_build)
    again = load_stamps()
    assert again["id"] == first["id"] and again.info.description == first.info.description
    assert capsys.readouterr().out == ""  # the summary is printed at build time only
    with pytest.raises(AssertionError, match="rebuilt"):
        load_stamps(rebuild=True)


def test_other_stamps_folder_gets_its_own_cache(fake, tmp_path, monkeypatch):
    assert len(load_stamps()) == 3
    other = tmp_path / "other"
    png(other / "toys" / "ball.png")
    write(other / "toys" / "ball.txt", "A ball.")
    monkeypatch.setenv("MMCOURSE_TUXPAINT_DIR", str(other))
    assert load_stamps()["id"] == ["toys/ball"]


def test_spoken_descriptions(fake):
    sp = load_spoken_descriptions()
    rows = [{k: v for k, v in row.items() if k not in ("audio", "audio_sha")} for row in sp]
    assert rows == [
        {"stamp_id": "animals/birds/duck", "lang": lang, "text": text, "text_lang": text_lang,
         "category": "animals/birds", "top_category": "animals"}
        for lang, text, text_lang in [("en", "A duck.", "en"), ("fr", "Un canard.", "fr"),
                                      ("lt", "A duck.", "en")]]
    assert "1 empty audio files" in sp.info.description
    assert "1 audio files that do not decode" in sp.info.description
    assert load_audio(sp[0]["audio"], sample_rate=8000)[1] == 8000
    assert len(set(sp["audio_sha"])) == 1  # the three recordings are one file
    assert load_spoken_descriptions(["fr"])["text"] == ["Un canard."]
    with pytest.raises(ValueError, match=r"no spoken descriptions in \['xx'\]; available: \['en', 'fr', 'lt'\]"):
        load_spoken_descriptions(["xx"])


def test_no_spoken_descriptions_is_an_error(env):
    png(env / "toys" / "ball.png")
    write(env / "toys" / "ball.txt", "A ball.")
    with pytest.raises(ValueError, match=r"no spoken descriptions \(<name>_desc\*\.ogg\)"):
        load_spoken_descriptions()


def test_identical_content_gets_identical_hashes(env):
    # Tux Paint ships the same files under different names; the hashes must reveal it.
    ogg, other = ogg_bytes(), ogg_bytes(seconds=0.5)
    for name, picture in (("flower1", (255, 0, 0, 255)), ("flower2", (255, 0, 0, 255)),
                          ("tree", (0, 255, 0, 255))):
        env.joinpath("plants").mkdir(exist_ok=True)
        Image.new("RGBA", (30, 30), picture).save(env / "plants" / f"{name}.png")
        write(env / "plants" / f"{name}.txt", f"A {name}.")
        write(env / "plants" / f"{name}_desc_fr.ogg", other if name == "tree" else ogg)
    rows = {row["id"].split("/")[1]: row for row in load_stamps().select_columns(
        ["id", "image_sha", "sound_sha", "description_shas"])}
    assert rows["flower1"]["image_sha"] == rows["flower2"]["image_sha"] != rows["tree"]["image_sha"]
    assert rows["flower1"]["description_shas"] == rows["flower2"]["description_shas"] != \
        rows["tree"]["description_shas"]
    assert rows["tree"]["sound_sha"] is None
    spoken = load_spoken_descriptions()
    assert spoken["audio_sha"][0] == spoken["audio_sha"][1] != spoken["audio_sha"][2]


def stamp_with_recordings(root: Path, name: str, sound: bytes | None = None, **descriptions: bytes) -> None:
    """A stamp `plants/<name>` with a plain picture, a caption and the given audio files."""
    png(root / "plants" / f"{name}.png")
    write(root / "plants" / f"{name}.txt", f"A {name}.")
    if sound is not None:
        write(root / "plants" / f"{name}.ogg", sound)
    for lang, data in descriptions.items():
        write(root / "plants" / f"{name}_desc_{lang}.ogg", data)


def test_same_samples_in_two_ogg_files_get_one_hash(env):
    # Ogg files carry a random stream serial number: one recording saved twice differs in bytes
    # (as Tux Paint's badger.ogg and beaver.ogg do). Hashing the bytes would split them.
    wave = voice()
    first, second = encode(wave, 16000), encode(wave, 16000)
    assert first != second
    stamp_with_recordings(env, "tree1", sound=first, fr=first)
    stamp_with_recordings(env, "tree2", sound=second, fr=second)
    stamp_with_recordings(env, "tree3", sound=encode(voice(f0=(240.0, 150.0), seed=1), 16000))
    rows = {row["id"]: row for row in load_stamps().select_columns(["id", "sound_sha", "description_shas"])}
    tree1, tree2, tree3 = rows["plants/tree1"], rows["plants/tree2"], rows["plants/tree3"]
    assert tree1["sound_sha"] == tree2["sound_sha"] != tree3["sound_sha"]
    assert tree1["description_shas"] == tree2["description_shas"]
    assert tree1["sound_sha"] == audio_hash(*load_audio(first, mono=False))  # no near-duplicate involved
    assert len(set(load_spoken_descriptions()["audio_sha"])) == 1


def test_near_duplicate_recordings_share_a_hash(env):
    # The same sound at another gain, with silence added, cut short, at another rate or as WAV:
    # other samples, so other exact hashes, but one recording for a split.
    a, sr = voice(), 16000
    padded = torchaudio.functional.resample(torch.cat([torch.zeros(int(0.3 * sr)), a]), sr, 22050)
    copies = {"fr": encode(a, sr), "es": encode(0.5 * a, sr), "ca": encode(padded, 22050),
              "ro": encode(a[:int(0.92 * len(a))], sr), "bg": encode(a, sr, "wav")}
    stamp_with_recordings(env, "tree1", fr=copies["fr"], es=copies["es"])
    stamp_with_recordings(env, "tree2", ca=copies["ca"], ro=copies["ro"], bg=copies["bg"])
    # Same syllables and pitch range, other voices: different recordings.
    stamp_with_recordings(env, "tree3", fr=encode(voice(f0=(220.0, 140.0), seed=1), sr))
    stamp_with_recordings(env, "tree4", fr=encode(voice(f0=(180.0, 260.0), seed=2), sr))
    exact = {audio_hash(*load_audio(data, mono=False)) for data in copies.values()}
    assert len(exact) == len(copies)
    spoken = load_spoken_descriptions()
    sha = dict(zip(zip(spoken["stamp_id"], spoken["lang"]), spoken["audio_sha"]))
    assert len({sha["plants/tree1", lang] for lang in ("fr", "es")} |
               {sha["plants/tree2", lang] for lang in ("ca", "ro", "bg")}) == 1
    assert len({sha["plants/tree1", "fr"], sha["plants/tree3", "fr"], sha["plants/tree4", "fr"]}) == 3
    assert min(exact) == sha["plants/tree1", "fr"]  # a group takes its smallest exact hash
    for seed in range(3):
        parts = split_by_group(spoken, "stamp_id", test_fraction=0.34, val_fraction=0.33, seed=seed,
                               link_columns=["audio_sha"])
        assert sorted(len(p) for p in parts.values()) == [1, 1, 5]  # tree1 and tree2 on one side


def test_waveform_match():
    a = voice().double()
    shifted = torch.cat([torch.zeros(500, dtype=torch.float64), -0.25 * a])
    assert tuxpaint.waveform_match(a, shifted) > 0.999  # any lag, gain or polarity
    assert tuxpaint.waveform_match(a, a[:len(a) // 2]) < 0.8  # half of the sound is another sound
    assert tuxpaint.waveform_match(a, voice(f0=(220.0, 140.0), seed=1).double()) < 0.5
    assert tuxpaint.waveform_match(a, torch.zeros(100, dtype=torch.float64)) == 0.0


# --- the installed package (built once into the shared cache) -----------------------------

@pytest.fixture(scope="module")
def real(tuxpaint):
    return load_stamps()


def test_real_stamps(real):
    assert len(real) > 700 and len(set(real["id"])) == len(real)
    assert real.features == STAMP_FEATURES
    assert "SVG-only stamps" in real.info.description
    assert {"animals", "food", "vehicles", "household"} <= set(real["top_category"])
    for row in real.select(range(0, len(real), 40)):
        assert row["image"].mode == "RGBA" and max(row["image"].size) <= tuxpaint.MAX_SIDE
        assert row["caption"] and row["id"].startswith(row["category"] + "/")
        assert row["top_category"] == row["category"].split("/")[0]
        assert row["tags"] and row["tags"][0] == row["tags"][0].lower()
    langs = {t["lang"] for ts in real["translations"] for t in ts}
    assert len(langs) > 70 and {"fr", "el", "zh_CN", "ar"} <= langs
    with_fr = sum(any(t["lang"] == "fr" for t in ts) for ts in real["translations"])
    assert with_fr > 0.8 * len(real)


def test_real_audio(real):
    # Count through Arrow so no audio bytes are read.
    sound, descriptions = real.data.column("sound"), real.data.column("descriptions")
    has_sound = pc.is_valid(sound).to_pylist()
    assert sum(has_sound) > 100
    assert pc.sum(pc.list_value_length(descriptions)).as_py() > 5000
    wave, sr = load_audio(real[has_sound.index(True)]["sound"])
    assert sr > 8000 and len(wave) > 0.1 * sr


def test_real_reload_is_fast(real):
    start = time.perf_counter()
    again = load_stamps()
    assert time.perf_counter() - start < 5.0 and len(again) == len(real)


def test_real_spoken_descriptions_line_up_with_stamps(real):
    english = load_spoken_descriptions(["en"])
    assert 50 < len(english) < 100
    captions = dict(zip(real["id"], real["caption"]))
    for row in english.select_columns(["stamp_id", "text", "text_lang"]):
        assert row["text_lang"] == "en" and row["text"] == captions[row["stamp_id"]]
    wave, sr = load_audio(english[0]["audio"])
    assert sr == 44100 and 0.3 < len(wave) / sr < 15
    parts = split_by_group(real, holdout=["vehicles"], seed=0)
    assert "vehicles" not in set(parts["train"]["top_category"]) | set(parts["test"]["top_category"])
    assert set(parts["heldout"]["top_category"]) == {"vehicles"}


def test_real_package_ships_identical_recordings_under_other_names():
    # Why splits link rows by content: splitting by stamp alone would leak these.
    spoken = load_spoken_descriptions().select_columns(["stamp_id", "audio_sha"])
    stamps_per_sha = {}
    for row in spoken:
        stamps_per_sha.setdefault(row["audio_sha"], set()).add(row["stamp_id"])
    assert sum(len(s) > 1 for s in stamps_per_sha.values()) > 100


# Files of tuxpaint-stamps-default that differ in bytes (a random Ogg serial number) but decode to
# the same samples, and files that are one recording re-encoded (other samples, same sound).
SAME_SAMPLES = [("animals/mammals/badger.ogg", "animals/mammals/rodents/beaver.ogg"),
                ("animals/mammals/bovines/ram.ogg", "animals/mammals/bovines/mountaingoat.ogg"),
                ("symbols/alphabets/asl/asl_z_desc_el.ogg",
                 "symbols/alphabets/english/filled/uppercase/Z_filled_desc_el.ogg")]
SAME_SOUND = [("symbols/alphabets/english/filled/lowercase/k_filled_desc_ru.ogg",
               "symbols/alphabets/english/filled/uppercase/K_filled_desc_ru.ogg"),
              ("symbols/chess/b_3_bishop_desc_el.ogg", "symbols/chess/w_3_bishop_desc_el.ogg")]


def _recording_shas(stamps, spoken) -> dict[str, str]:
    """The datasets' hash of each recording of the installed package, by its .ogg file name."""
    shas = {f"{i}.ogg": sha for i, sha in zip(stamps["id"], stamps["sound_sha"]) if sha}
    for stamp_id, lang, sha in zip(spoken["stamp_id"], spoken["lang"], spoken["audio_sha"]):
        shas[f"{stamp_id}_desc{'' if lang == 'en' else '_' + lang}.ogg"] = sha
    return shas


def _stamp(path: str) -> str:
    return path.removesuffix(".ogg").partition("_desc")[0]


def _part_of(parts, column: str) -> dict[str, str]:
    return {value: name for name, part in parts.items() for value in part[column]}


def test_real_recordings_are_hashed_after_decoding(real):
    root, shas = stamps_root(), _recording_shas(real, load_spoken_descriptions())
    for a, b in SAME_SAMPLES:
        assert content_hash((root / a).read_bytes()) != content_hash((root / b).read_bytes())  # the old hashes
        assert audio_hash(*load_audio(root / a, mono=False)) == audio_hash(*load_audio(root / b, mono=False))
        assert shas[a] == shas[b], (a, b)
    for a, b in SAME_SOUND:
        assert audio_hash(*load_audio(root / a, mono=False)) != audio_hash(*load_audio(root / b, mono=False))
        assert shas[a] == shas[b], (a, b)


def test_real_splits_keep_each_recording_on_one_side(real):
    # The course's splits: notebook 01 links these columns, notebook 06 splits recordings by stamp.
    spoken = load_spoken_descriptions()
    pairs = [(_stamp(a), _stamp(b)) for a, b in SAME_SAMPLES + SAME_SOUND]
    spoken_pairs = [(_stamp(a), _stamp(b)) for a, b in SAME_SAMPLES + SAME_SOUND if "_desc" in a]
    columns = ["image_sha", "sound_sha", "description_shas"]
    for seed in range(3):
        parts = split_by_group(real, "id", seed=seed, link_columns=columns)
        assert_disjoint(parts, ["id", *columns])
        part = _part_of(parts, "id")
        assert all(part[a] == part[b] for a, b in pairs), seed
        parts = split_by_group(spoken, "stamp_id", seed=seed, link_columns=["audio_sha"])
        assert_disjoint(parts, ["stamp_id", "audio_sha"])
        part = _part_of(parts, "stamp_id")
        assert all(part[a] == part[b] for a, b in spoken_pairs), seed
