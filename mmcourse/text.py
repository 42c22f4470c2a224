"""Text as token ids (a tokenizer and a vocabulary with four special tokens) and English inflection."""
from __future__ import annotations

import functools
import re
from collections import Counter
from typing import Callable, Iterable, Sequence

import torch

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)  # ids 0..3 in every vocabulary

_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Lower-case words and punctuation marks; works for any script ("Un éléphant." -> 3 tokens)."""
    if not isinstance(text, str):
        raise TypeError(f"tokenize expects a str, got {type(text).__name__}")
    return _WORD.findall(text.lower())


class Vocab:
    """Maps tokens to ids and back. Ids 0-3 are <pad>, <unk>, <bos>, <eos>."""

    def __init__(self, tokens: Sequence[str], tokenizer: Callable[[str], list[str]] = tokenize):
        self.itos: list[str] = list(SPECIALS) + [t for t in tokens if t not in SPECIALS]
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("vocabulary tokens must be unique")
        self.tokenizer = tokenizer

    @classmethod
    def build(cls, texts: Iterable[str], min_freq: int = 1, max_size: int | None = None,
              tokenizer: Callable[[str], list[str]] = tokenize) -> "Vocab":
        """Keep tokens seen at least `min_freq` times, most frequent first (ties alphabetical)."""
        counts = Counter(tok for text in texts for tok in tokenizer(text))
        if not counts:
            raise ValueError("cannot build a vocabulary from no text: the corpus is empty")
        ranked = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
        return cls(ranked[:max_size] if max_size else ranked, tokenizer)

    pad_id, unk_id, bos_id, eos_id = 0, 1, 2, 3

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        ids = [self.stoi.get(t, self.unk_id) for t in self.tokenizer(text)]
        return [self.bos_id] * add_bos + ids + [self.eos_id] * add_eos

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        """Ids back to text, stopping at <eos>; specials dropped unless asked for."""
        words = []
        for i in (int(i) for i in ids):
            if i == self.eos_id and skip_special:
                break
            if not 0 <= i < len(self.itos):
                raise IndexError(f"token id {i} is outside the vocabulary of {len(self.itos)}")
            if skip_special and i < len(SPECIALS):
                continue
            words.append(self.itos[i])
        return " ".join(words)

    def encode_batch(self, texts: Sequence[str], max_len: int | None = None, add_bos: bool = False,
                     add_eos: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Pad a batch: ids [B, L] (0 = <pad>) and lengths [B]. Longer texts are cut to `max_len`."""
        seqs = [self.encode(t, add_bos, add_eos)[:max_len] for t in texts]
        if not seqs:
            raise ValueError("encode_batch got an empty list of texts")
        lengths = torch.tensor([len(s) for s in seqs])
        ids = torch.full((len(seqs), max(1, int(lengths.max()))), self.pad_id, dtype=torch.long)
        for row, seq in enumerate(seqs):
            ids[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
        return ids, lengths


# ---------------------------------------------------------------- English inflection
# One helper for the whole course, built on the `inflect` package: the scene grammar's
# plurals ("two cacti" or "two cactuses") and the tag singulariser must agree, so both
# come from here. inflect is imported on first use (it takes a few seconds to import).

# Words ending in -s that are singular (or have no singular); inflect would strip them.
NOT_PLURAL = frozenset({"clothes", "christmas", "mars", "news", "series", "species", "canvas",
                        "atlas", "gas", "lens", "pants", "jeans", "trousers", "shorts", "pyjamas",
                        "binoculars", "scissors", "us", "this", "is", "was", "has"})
PREPOSITIONS = frozenset({"of", "at", "in", "on", "with", "for", "from", "under"})


@functools.lru_cache(maxsize=1)
def _inflect():
    try:
        import inflect
    except ImportError as err:
        raise ImportError("English plurals need the inflect package: pip install inflect") from err
    engine = inflect.engine()
    engine.defnoun("german", "germans")  # inflect's "-man" rule would say "germen"
    return engine


def plural(noun: str) -> str:
    """English plural of a noun phrase: "red apple" -> "red apples", "pair of glasses" ->
    "pairs of glasses", "snowman" -> "snowmen", a letter "A" -> "As"."""
    if not isinstance(noun, str) or not noun.strip():
        raise ValueError(f"plural needs a non-empty noun, got {noun!r}")
    words = noun.split()
    # Only the head inflects: "men with a hat", not inflect's "men with hats".
    cut = next((i for i, w in enumerate(words) if i > 0 and w.lower() in PREPOSITIONS), None)
    if cut is not None:
        return " ".join([plural(" ".join(words[:cut])), *words[cut:]])
    if len(words[-1]) == 1:  # a letter: "three As", "letter Ss"
        return " ".join(words) + "s"
    return _inflect().plural_noun(" ".join(words))


def singular(word: str) -> str:
    """The singular of a plural word ("berries" -> "berry", "mice" -> "mouse"); any other word
    is returned unchanged ("cactus", "glass", "clothes")."""
    lower = word.lower()
    if lower in NOT_PLURAL or len(lower) < 3 or lower.endswith(("us", "is", "ss")):
        return word
    return _inflect().singular_noun(word) or word


def article(phrase: str) -> str:
    """'a' or 'an' for the phrase that follows, by its sound: "an hour", "a unicorn", "an F"."""
    if not isinstance(phrase, str) or not phrase.strip():
        raise ValueError(f"article needs a non-empty phrase, got {phrase!r}")
    return _inflect().a(phrase).split(" ", 1)[0]
