import time
from pathlib import Path

import pyarrow.compute as pc
import pytest
import torch
from PIL import Image

from mmcourse.data import tuxpaint
from mmcourse.data.audio_io import load_audio
from mmcourse.data.splits import split_by_group
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
    from torchcodec.encoders import AudioEncoder
    t = torch.arange(int(seconds * sr)) / sr
    return bytes(AudioEncoder(0.3 * torch.sin(2 * torch.pi * 440 * t)[None], sample_rate=sr)
                 .to_tensor("ogg").numpy())


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
                  "1 empty audio files", "1 audio files that are not Ogg or WAV"]:
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
