"""Tux Paint stamps as a `datasets.Dataset`: real cut-out images with captions in ~80 languages,
sound effects and human spoken descriptions.

The stamps come from the Debian/Ubuntu package `tuxpaint-stamps-default` (GPL-2), read where it
is installed and never copied into the repository. Each stamp is a set of files side by side:

    animals/birds/duck.png          the image (RGBA cut-out)
    animals/birds/duck.txt          "A duck." then one `lang.utf8=translation` line per language
    animals/birds/duck.ogg          a sound effect (optional; .wav also occurs)
    animals/birds/duck_desc.ogg     the caption spoken in English (optional)
    animals/birds/duck_desc_fr.ogg  ... and in other languages (optional)

`load_stamps()` builds one row per stamp once (about 10 s) and caches it; later calls
reload the cache in a fraction of a second. `load_spoken_descriptions()` gives one row per recording.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Audio, Dataset, DatasetInfo, Features, Image, List, Value
from PIL import Image as PILImage
from tqdm.auto import tqdm

import mmcourse.text
from mmcourse.data.cache import cached_dataset
from mmcourse.data.splits import content_hash
from mmcourse.text import singular

ROOT_ENV = "MMCOURSE_TUXPAINT_DIR"
DEFAULT_ROOT = Path("/usr/share/tuxpaint/stamps")
PACKAGE = "tuxpaint-stamps-default"
MAX_SIDE = 256  # images are downscaled to this longest side to keep the cache small

AUDIO_MAGIC = (b"OggS", b"RIFF")  # Ogg and WAV files start with these bytes
VARIANT_SUFFIXES = ("_mirror", "_flip")  # pre-drawn mirrored/flipped copies of another stamp
_DESC_FILE = re.compile(r"^(?P<name>.+)_desc(?:_(?P<lang>[A-Za-z]{2,3}(?:_[A-Za-z]{2})?))?\.(?:ogg|wav)$")

STAMP_FEATURES = Features({
    "id": Value("string"),                      # "animals/birds/duck"
    "image": Image(mode="RGBA"),                # PIL RGBA, longest side <= MAX_SIDE
    "caption": Value("string"),                 # "A duck."
    "translations": List({"lang": Value("string"), "text": Value("string")}),
    "category": Value("string"),                # "animals/birds"
    "top_category": Value("string"),            # "animals"
    "tags": List(Value("string")),              # ["animal", "bird", "duck"]
    "sound": Audio(),                           # None where the stamp has no sound effect
    "descriptions": List({"lang": Value("string"), "audio": Audio()}),  # spoken captions
    # Content fingerprints (mmcourse.data.splits.content_hash): Tux Paint ships identical
    # files under different names, and splits must keep them on one side.
    "image_sha": Value("string"),               # of the decoded RGBA pixels
    "sound_sha": Value("string"),               # of the sound file's bytes; None without sound
    "description_shas": List(Value("string")),  # one per entry of `descriptions`, same order
})

SPOKEN_FEATURES = Features({
    "stamp_id": Value("string"),
    "lang": Value("string"),                    # "en" for <name>_desc.ogg
    "audio": Audio(),
    "text": Value("string"),                    # the caption in `text_lang`
    "text_lang": Value("string"),               # `lang`, or "en" where the .txt lacks that language
    "category": Value("string"),
    "top_category": Value("string"),
    "audio_sha": Value("string"),               # of the recording's bytes (identical files share it)
})

# What the cached datasets depend on: edit any of these and the next load rebuilds.
RECIPE = (sys.modules[__name__], mmcourse.text, content_hash, MAX_SIDE)

# Function words only: sklearn's English list also drops content words such as "fire" or "back".
# "i" and "us" stay: in captions they are the letter I and the US.
STOPWORDS = frozenset("""
a an the and or but nor of in on at to for with without from by as into onto over under up down
out off about is are was were be been being it its it's this that these those there here
he she they them his her their our your my you we me him who whom which what when where
how can could will would shall should may might must do does did has have had not no so if
than then very too also only just some any each every all both such own same other another
called named make makes made
""".split())

def stamps_root() -> Path:
    """The folder holding the stamps: $MMCOURSE_TUXPAINT_DIR, else /usr/share/tuxpaint/stamps."""
    root = Path(os.environ.get(ROOT_ENV) or DEFAULT_ROOT).expanduser()
    if not root.is_dir() or next(root.rglob("*.png"), None) is None:
        raise FileNotFoundError(
            f"no Tux Paint stamps (*.png) found in {root}. Install the package {PACKAGE} "
            f"(sudo apt-get install {PACKAGE}) or set {ROOT_ENV} to a folder that holds "
            "<category>/<name>.png stamps with their .txt captions")
    return root


def load_stamps(rebuild: bool = False) -> Dataset:
    """One row per Tux Paint stamp (columns in `STAMP_FEATURES`), built once and cached.

    Images are RGBA and downscaled so the longest side is at most 256 px (MAX_SIDE) to keep the
    cache small. `sound` is the stamp's own `.ogg`/`.wav` sound effect or None. `descriptions`
    lists the spoken captions as `{"lang", "audio"}` (often empty). Skipped files (SVG-only
    stamps, which need a rasteriser; mirrored copies; unreadable or empty files) are counted
    in a summary printed at build time and kept in `ds.info.description`.
    """
    root = stamps_root()
    return cached_dataset(_cache_name("tuxpaint-stamps", root), lambda: _build_stamps(root),
                          RECIPE, rebuild)


def load_spoken_descriptions(langs: str | list[str] | None = None, rebuild: bool = False) -> Dataset:
    """One row per spoken description of a stamp (columns in `SPOKEN_FEATURES`).

    `text` is the caption in the spoken language where the stamp's .txt has it, else the English
    caption (`text_lang` says which). Only stamps present in `load_stamps()` appear, so splits
    by `stamp_id` line up with splits of the stamps. `langs` keeps only those languages.
    """
    root = stamps_root()
    ds = cached_dataset(_cache_name("tuxpaint-spoken", root), lambda: _build_spoken(root),
                        RECIPE, rebuild)
    if langs is None:
        return ds
    wanted = {langs} if isinstance(langs, str) else set(langs)
    available = set(ds.unique("lang"))
    if wanted - available:
        raise ValueError(f"no spoken descriptions in {sorted(wanted - available)}; "
                         f"available: {sorted(available)}")
    return ds.select([i for i, lang in enumerate(ds["lang"]) if lang in wanted])


def parse_caption_text(text: str) -> tuple[str, list[dict[str, str]], int]:
    """Split a stamp's .txt into (English caption, translations, number of unreadable lines).

    The first line is the English caption; every later line should be `lang.utf8=text`.
    Blank lines are ignored; other lines, and translations with empty text, are counted.
    """
    lines = text.splitlines()
    caption = lines[0].strip() if lines else ""
    translations, bad = [], 0
    for line in lines[1:]:
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        lang = key.strip().removesuffix(".utf8")
        if not sep or lang == key.strip() or not lang or not value.strip():
            bad += 1
            continue
        translations.append({"lang": lang, "text": value.strip()})
    return caption, translations, bad


def family_of(category: str) -> str:
    """The first two levels of a category path: "animals/mammals/cats" -> "animals/mammals"."""
    return "/".join(category.split("/")[:2])


def caption_tags(caption: str, category: str) -> list[str]:
    """Lower-case content words of the category path and caption, plurals folded, no repeats.

    >>> caption_tags("Two red apples.", "food/fruit")
    ['food', 'fruit', 'two', 'red', 'apple']
    """
    words = _words(category.replace("/", " ").replace("_", " ").replace("-", " ")) + _words(caption)
    tags = [singular(w) for w in words if w not in STOPWORDS]
    return list(dict.fromkeys(tags))


def _words(text: str) -> list[str]:
    # Letters only (any script); "grandma's" -> "grandma", "don't" -> "don".
    return [w.split("'")[0] for w in re.findall(r"[^\W\d_]+(?:'[^\W\d_]+)*", text.lower().replace("’", "'"))]


# --- building ------------------------------------------------------------------------------

@dataclass
class _StampFiles:
    """The files found for one stamp; paths only, nothing read yet."""
    id: str
    image: Path
    caption_file: Path | None
    sound: Path | None
    descriptions: dict[str, Path] = field(default_factory=dict)

    @property
    def category(self) -> str:
        return self.id.rpartition("/")[0]


def _scan(root: Path, skipped: Counter) -> list[_StampFiles]:
    """Find every PNG stamp under `root` with its caption, sound and spoken descriptions."""
    stamps = []
    for folder, dirs, names in os.walk(root):
        dirs.sort()  # deterministic order on every file system
        here, names = Path(folder), set(names)
        by_name = {}
        for name in sorted(names):
            stem, ext = os.path.splitext(name)
            if ext == ".svg" and stem + ".png" not in names:
                skipped["SVG-only stamps (no rasteriser)"] += 1
            if ext != ".png":
                continue
            base = next((stem.removesuffix(s) for s in VARIANT_SUFFIXES if stem.endswith(s)), None)
            if base and (base + ".png" in names or base + ".svg" in names):
                skipped["mirrored/flipped copies"] += 1
                continue
            sound = next((here / (stem + e) for e in (".ogg", ".wav") if stem + e in names), None)
            caption_file = here / (stem + ".txt") if stem + ".txt" in names else None
            stamp = _StampFiles((here / stem).relative_to(root).as_posix(), here / name, caption_file, sound)
            stamps.append(stamp)
            by_name[stem] = stamp
        for name in sorted(names):
            match = _DESC_FILE.match(name)
            if match and match["name"] in by_name:
                by_name[match["name"]].descriptions[match["lang"] or "en"] = here / name
    return stamps


def _stamp_text(stamp: _StampFiles, skipped: Counter) -> dict | None:
    """Caption, translations, category and tags of a stamp; None (counted) if it has no caption."""
    if stamp.caption_file is None:
        skipped["stamps without a .txt caption"] += 1
        return None
    try:
        text = stamp.caption_file.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        skipped["caption files not in UTF-8"] += 1
        return None
    caption, translations, bad = parse_caption_text(text)
    if not caption:
        skipped["stamps with an empty English caption"] += 1
        return None
    skipped["unreadable translation lines"] += bad
    category = stamp.category
    return {"id": stamp.id, "caption": caption, "translations": translations,
            "category": category, "top_category": category.split("/")[0],
            "tags": caption_tags(caption, category)}


def _audio_ok(path: Path, skipped: Counter) -> bool:
    """Cheap check that `path` looks like Ogg or WAV; empty or foreign files are counted."""
    with open(path, "rb") as f:
        head = f.read(4)
    if not head:
        skipped["empty audio files"] += 1
        return False
    if head not in AUDIO_MAGIC:
        skipped["audio files that are not Ogg or WAV"] += 1
        return False
    return True


def _descriptions(stamp: _StampFiles, skipped: Counter) -> list[dict]:
    """{"lang", "audio" (the path), "sha"} for each readable spoken description of a stamp."""
    return [{"lang": lang, "audio": str(path), "sha": content_hash(path.read_bytes())}
            for lang, path in sorted(stamp.descriptions.items()) if _audio_ok(path, skipped)]


def _png_bytes(path: Path, skipped: Counter) -> tuple[bytes, str] | None:
    """(RGBA PNG bytes with longest side <= MAX_SIDE, hash of the pixels); None (counted) if unreadable."""
    try:
        with PILImage.open(path) as im:
            im = im.convert("RGBA")
    except (OSError, SyntaxError, ValueError):  # what PIL raises for truncated or foreign files
        skipped["unreadable images"] += 1
        return None
    sha = content_hash(f"{im.size}".encode() + im.tobytes())  # same pixels, same hash, whatever the file
    im.thumbnail((MAX_SIDE, MAX_SIDE), PILImage.Resampling.LANCZOS)  # never enlarges
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue(), sha


def _build_stamps(root: Path) -> Dataset:
    skipped = Counter()
    rows = []
    for stamp in tqdm(_scan(root, skipped), desc="Tux Paint stamps", unit="stamp"):
        row = _stamp_text(stamp, skipped)
        image = _png_bytes(stamp.image, skipped) if row else None
        if image is None:
            continue
        sound = stamp.sound if stamp.sound and _audio_ok(stamp.sound, skipped) else None
        descriptions = _descriptions(stamp, skipped)
        rows.append({**row, "image": {"bytes": image[0], "path": None}, "image_sha": image[1],
                     "sound": str(sound) if sound else None,
                     "sound_sha": content_hash(sound.read_bytes()) if sound else None,
                     "descriptions": [{"lang": d["lang"], "audio": d["audio"]} for d in descriptions],
                     "description_shas": [d["sha"] for d in descriptions]})
    if not rows:
        raise ValueError(f"no usable stamps in {root}: {_skip_text(skipped)}")
    n_sound = sum(r["sound"] is not None for r in rows)
    n_desc = sum(len(r["descriptions"]) for r in rows)
    summary = (f"Tux Paint stamps from {root}: {len(rows)} stamps, {n_sound} with sound, "
               f"{n_desc} spoken descriptions; skipped: {_skip_text(skipped)}")
    print(summary)
    return _dataset(rows, STAMP_FEATURES, summary)


def _build_spoken(root: Path) -> Dataset:
    skipped = Counter()
    kept = set(load_stamps()["id"])
    rows = []
    for stamp in _scan(root, Counter()):  # the stamps build already counted these skips
        if stamp.id not in kept or not stamp.descriptions:
            continue
        text = _stamp_text(stamp, Counter())
        by_lang = {t["lang"]: t["text"] for t in text["translations"]}
        for desc in _descriptions(stamp, skipped):
            text_lang = desc["lang"] if desc["lang"] in by_lang else "en"
            rows.append({"stamp_id": stamp.id, "lang": desc["lang"], "audio": desc["audio"],
                         "text": by_lang.get(desc["lang"], text["caption"]), "text_lang": text_lang,
                         "category": text["category"], "top_category": text["top_category"],
                         "audio_sha": desc["sha"]})
    if not rows:
        raise ValueError(f"no spoken descriptions (<name>_desc*.ogg) found in {root}")
    langs = Counter(r["lang"] for r in rows)
    summary = (f"Tux Paint spoken descriptions from {root}: {len(rows)} recordings of "
               f"{len({r['stamp_id'] for r in rows})} stamps in {len(langs)} languages "
               f"({', '.join(f'{k} {v}' for k, v in langs.most_common())}); "
               f"{sum(r['text_lang'] != r['lang'] for r in rows)} use the English caption as text; "
               f"skipped: {_skip_text(skipped)}")
    print(summary)
    return _dataset(rows, SPOKEN_FEATURES, summary)


def _dataset(rows: list[dict], features: Features, summary: str) -> Dataset:
    # The summary travels with the cache: `ds.info.description` still has it after a reload.
    rows = [{name: row[name] for name in features} for row in rows]  # columns in schema order
    return Dataset.from_list(rows, features=features,
                             info=DatasetInfo(description=summary, features=features))


def _skip_text(skipped: Counter) -> str:
    return ", ".join(f"{n} {what}" for what, n in sorted(skipped.items()) if n) or "nothing"


def _cache_name(prefix: str, root: Path) -> str:
    # One cache per stamps folder, so pointing MMCOURSE_TUXPAINT_DIR elsewhere never reads a stale one.
    return f"{prefix}-{hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:8]}"
