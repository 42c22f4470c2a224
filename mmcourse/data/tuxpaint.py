"""Tux Paint stamps as a `datasets.Dataset`: real cut-out images with captions in ~80 languages,
sound effects and human spoken descriptions.

The stamps come from the Debian/Ubuntu package `tuxpaint-stamps-default` (GPL-2), read where it
is installed and never copied into the repository. Each stamp is a set of files side by side:

    animals/birds/duck.png          the image (RGBA cut-out)
    animals/birds/duck.txt          "A duck." then one `lang.utf8=translation` line per language
    animals/birds/duck.ogg          a sound effect (optional; .wav also occurs)
    animals/birds/duck_desc.ogg     the caption spoken in English (optional)
    animals/birds/duck_desc_fr.ogg  ... and in other languages (optional)

`load_stamps()` builds one row per stamp once (about a minute: it decodes every recording to
fingerprint it) and caches it; later calls reload the cache in a fraction of a second.
`load_spoken_descriptions()` gives one row per recording.
"""
from __future__ import annotations

import hashlib
import io
import math
import os
import re
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from datasets import Audio, Dataset, DatasetInfo, Features, Image, List, Value
from PIL import Image as PILImage
from tqdm.auto import tqdm

import mmcourse.text
from mmcourse.data import audio_io
from mmcourse.data.audio_io import load_audio
from mmcourse.data.cache import cached_dataset
from mmcourse.data.splits import audio_hash, content_hash
from mmcourse.runtime import one_thread
from mmcourse.text import singular

ROOT_ENV = "MMCOURSE_TUXPAINT_DIR"
DEFAULT_ROOT = Path("/usr/share/tuxpaint/stamps")
PACKAGE = "tuxpaint-stamps-default"
MAX_SIDE = 256  # images are downscaled to this longest side to keep the cache small

AUDIO_MAGIC = (b"OggS", b"RIFF")  # Ogg and WAV files start with these bytes
VARIANT_SUFFIXES = ("_mirror", "_flip")  # pre-drawn mirrored/flipped copies of another stamp
_DESC_FILE = re.compile(r"^(?P<name>.+)_desc(?:_(?P<lang>[A-Za-z]{2,3}(?:_[A-Za-z]{2})?))?\.(?:ogg|wav)$")

# Near-duplicate recordings (a re-encode, a gain change, silence added or cut): a coarse picture
# of each sound finds candidate pairs in one matrix product, then the waveforms decide.
FP_BANDS, FP_LOW_HZ, FP_HIGH_HZ = 13, 80.0, 4000.0  # log-spaced bands; 4 kHz fits the 8 kHz files
FP_FRAMES, FP_SPREAD = 32, 2.5      # points over the energy centroid +- 2.5 standard deviations
NEAR_CANDIDATE = 0.93               # picture cosine worth a waveform check (true pairs: >= 0.96)
NEAR_MATCH = 0.95                   # waveform correlation that makes two recordings one sound
MATCH_RATE = 8000                   # Hz at which waveforms are compared

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
    # files under different names, and splits must keep them on one side. Recordings are hashed
    # after decoding (an Ogg file's bytes hold a random serial number), and near-duplicates
    # share the smallest hash of their group (see `_recording_shas`).
    "image_sha": Value("string"),               # of the decoded RGBA pixels
    "sound_sha": Value("string"),               # of the decoded sound; None without sound
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
    "audio_sha": Value("string"),               # the recording's entry of the stamp's `description_shas`
})

# What the cached datasets depend on: edit any of these and the next load rebuilds. The decoder
# counts too: the recording hashes are of its output.
RECIPE = (sys.modules[__name__], mmcourse.text, content_hash, audio_hash, audio_io, MAX_SIDE)

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


def _audio_files(stamp: _StampFiles, skipped: Counter) -> list[Path]:
    """The stamp's sound and spoken descriptions that look like Ogg or WAV (the others counted)."""
    files = [stamp.sound] if stamp.sound else []
    files += [path for _, path in sorted(stamp.descriptions.items())]
    return [path for path in files if _audio_ok(path, skipped)]


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
    found = []
    for stamp in tqdm(_scan(root, skipped), desc="Tux Paint stamps", unit="stamp"):
        row = _stamp_text(stamp, skipped)
        image = _png_bytes(stamp.image, skipped) if row else None
        if image is not None:
            found.append((stamp, row, image))
    # All recordings at once: near-duplicates are found across the whole package.
    shas = _recording_shas([path for stamp, _, _ in found for path in _audio_files(stamp, skipped)], skipped)
    rows = []
    for stamp, row, image in found:
        sound = stamp.sound if stamp.sound in shas else None
        descriptions = [(lang, path) for lang, path in sorted(stamp.descriptions.items()) if path in shas]
        rows.append({**row, "image": {"bytes": image[0], "path": None}, "image_sha": image[1],
                     "sound": str(sound) if sound else None,
                     "sound_sha": shas[sound] if sound else None,
                     "descriptions": [{"lang": lang, "audio": str(path)} for lang, path in descriptions],
                     "description_shas": [shas[path] for _, path in descriptions]})
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
    stamps = load_stamps()
    kept, shas = set(stamps["id"]), _description_shas(stamps)  # the stamps build decoded them already
    rows = []
    for stamp in _scan(root, Counter()):  # the stamps build already counted these skips
        if stamp.id not in kept or not stamp.descriptions:
            continue
        descriptions = []
        for lang, path in sorted(stamp.descriptions.items()):
            if (stamp.id, lang) in shas:
                descriptions.append((lang, path))
            elif _audio_ok(path, skipped):  # the stamps build dropped it: say why here too
                skipped[_UNDECODABLE] += 1
        text = _stamp_text(stamp, Counter())
        by_lang = {t["lang"]: t["text"] for t in text["translations"]}
        for lang, path in descriptions:
            rows.append({"stamp_id": stamp.id, "lang": lang, "audio": str(path),
                         "text": by_lang.get(lang, text["caption"]),
                         "text_lang": lang if lang in by_lang else "en",
                         "category": text["category"], "top_category": text["top_category"],
                         "audio_sha": shas[stamp.id, lang]})
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


def _description_shas(stamps: Dataset) -> dict[tuple[str, str], str]:
    """(stamp id, lang) -> hash of each spoken description of `stamps`, read without touching audio bytes."""
    descriptions = stamps.data.column("descriptions")  # Arrow: the langs only, not the embedded audio
    langs = iter([lang for chunk in descriptions.chunks for lang in chunk.flatten().field("lang").to_pylist()])
    shas = {}
    for stamp_id, row in zip(stamps["id"], stamps["description_shas"]):
        for sha in row:
            shas[stamp_id, next(langs)] = sha
    return shas


# --- recording hashes and near-duplicates ---------------------------------------------------

_UNDECODABLE = "audio files that do not decode"


def _recording_shas(paths: list[Path], skipped: Counter) -> dict[Path, str]:
    """The content hash of each recording that decodes (the others are counted and left out).

    Each recording gets `audio_hash` of its decoded samples, so identical sounds match whatever
    their bytes. Recordings that are the same sound without identical samples (`_near_duplicates`)
    then take the smallest hash of their group, so one value links them all in a split.
    """
    exact: dict[Path, str] = {}
    pictures: dict[str, tuple[torch.Tensor, Path]] = {}  # one per distinct hash
    with one_thread():
        for path in tqdm(paths, desc="decoding recordings", unit="file"):
            try:
                wave, sr = load_audio(path, mono=False)
            except ValueError:  # what load_audio raises for undecodable or sample-less files
                skipped[_UNDECODABLE] += 1
                continue
            exact[path] = audio_hash(wave, sr)
            if exact[path] not in pictures:
                pictures[exact[path]] = (_sound_picture(wave.mean(dim=0), sr), path)
        group = _components(pictures, _near_duplicates(pictures))
    return {path: group[sha] for path, sha in exact.items()}


def _sound_picture(mono: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """A coarse, gain-free unit vector of a recording's loud part: equal for near-duplicates.

    Band energies (FP_BANDS log-spaced bands, 80 Hz to 4 kHz) of ~23 ms frames are sampled at
    FP_FRAMES points spanning the energy centroid +- FP_SPREAD energy-weighted standard
    deviations, so silence added or cut at the ends barely moves the picture.
    """
    x = mono - mono.mean()  # some Danish recordings carry a DC offset of 0.18 that would dominate
    n_fft = 1 << round(math.log2(0.023 * sample_rate))
    x = torch.nn.functional.pad(x, (0, max(0, n_fft - len(x))))
    power = torch.stft(x, n_fft, n_fft // 2, window=torch.hann_window(n_fft), return_complex=True).abs() ** 2
    bands = (_band_matrix(n_fft, sample_rate) @ power).double().numpy()  # (FP_BANDS, frames)
    energy = bands.sum(axis=0)
    if energy.sum() <= 0:  # digital silence: like nothing else
        return torch.zeros(FP_BANDS * FP_FRAMES)
    # Centre and width by energy, not by a level threshold: some noise floors sit at -30 dB.
    t, weight = np.arange(len(energy)), energy / energy.sum()
    centre = (t * weight).sum()
    spread = math.sqrt(((t - centre) ** 2 * weight).sum())
    grid = np.linspace(centre - FP_SPREAD * spread, centre + FP_SPREAD * spread, FP_FRAMES)
    picture = np.cbrt(np.stack([np.interp(grid, t, band, left=0, right=0) for band in bands]))
    picture = (picture - picture.mean()).ravel()  # cube root tames loud frames; mean and norm remove gain
    norm = np.linalg.norm(picture)
    return torch.from_numpy(picture / norm if norm > 0 else picture).float()


@lru_cache(maxsize=None)
def _band_matrix(n_fft: int, sample_rate: int) -> torch.Tensor:
    """(FP_BANDS, n_fft // 2 + 1) 0/1 matrix summing FFT bins into the picture's bands."""
    freqs = torch.fft.rfftfreq(n_fft, 1 / sample_rate, dtype=torch.float64)
    edges = torch.logspace(math.log10(FP_LOW_HZ), math.log10(FP_HIGH_HZ), FP_BANDS + 1, dtype=torch.float64)
    band = torch.bucketize(freqs, edges) - 1  # -1 below the lowest edge, FP_BANDS above the highest
    return torch.stack([(band == b).float() for b in range(FP_BANDS)])


def _near_duplicates(pictures: dict[str, tuple[torch.Tensor, Path]]) -> list[tuple[str, str]]:
    """Pairs of hashes whose recordings are one sound: close pictures, then matching waveforms."""
    keys = sorted(pictures)
    if len(keys) < 2:
        return []
    vectors = torch.stack([pictures[k][0] for k in keys])
    pairs = []
    for start in range(0, len(keys), 1024):  # blocks keep the similarity matrix small
        sims = vectors[start:start + 1024] @ vectors.T
        for i, j in torch.nonzero(sims >= NEAR_CANDIDATE).tolist():
            if start + i < j:
                pairs.append((keys[start + i], keys[j]))
    waves = lru_cache(maxsize=None)(lambda key: _match_wave(pictures[key][1]))
    return [(a, b) for a, b in pairs if waveform_match(waves(a), waves(b)) >= NEAR_MATCH]


def _match_wave(path: Path) -> torch.Tensor:
    wave, _ = load_audio(path, sample_rate=MATCH_RATE)
    return wave.double() - wave.double().mean()


def waveform_match(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak normalised cross-correlation of two 1-D waveforms over all lags, in [0, 1].

    1 for the same sound at any gain, shift or polarity; a copy trimmed to a share f of the
    energy gives sqrt(f). In Tux Paint, different recordings stay below 0.94 (two letters spoken
    after the same words) and the near-duplicates found score 0.958 to 0.9995.
    """
    norms = float(a.norm() * b.norm())
    if norms == 0:
        return 0.0
    n = len(a) + len(b) - 1
    size = 1 << (n - 1).bit_length()
    corr = torch.fft.irfft(torch.fft.rfft(a, size) * torch.fft.rfft(b, size).conj(), size)
    return float(corr.abs().max()) / norms


def _components(keys: Iterable[str], pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Map each key to the smallest key it is linked to through `pairs` (directly or in a chain)."""
    parent = {k: k for k in keys}

    def root(k: str) -> str:
        while parent[k] != k:
            k = parent[k]
        return k

    for a, b in pairs:
        ra, rb = root(a), root(b)
        parent[max(ra, rb)] = min(ra, rb)  # roots stay the smallest member
    return {k: root(k) for k in parent}


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
