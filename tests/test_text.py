import pytest
import torch

from mmcourse.text import Vocab, article, plural, singular, tokenize


def test_tokenize_handles_any_script_and_punctuation():
    assert tokenize("A red apple.") == ["a", "red", "apple", "."]
    assert tokenize("Un éléphant!") == ["un", "éléphant", "!"]
    assert tokenize("Белка.") == ["белка", "."]
    with pytest.raises(TypeError, match="expects a str"):
        tokenize(None)


def test_vocab_specials_frequency_order_and_min_freq():
    v = Vocab.build(["a duck", "a duck", "a cat"], min_freq=2)
    assert v.itos == ["<pad>", "<unk>", "<bos>", "<eos>", "a", "duck"]
    assert "cat" not in v and len(v) == 6


def test_encode_decode_round_trip_and_unknown():
    v = Vocab.build(["a red apple"])
    ids = v.encode("a red pear", add_bos=True, add_eos=True)
    assert ids == [v.bos_id, v.stoi["a"], v.stoi["red"], v.unk_id, v.eos_id]
    assert v.decode(ids) == "a red"  # stops at <eos>, drops <bos> and <unk>
    assert v.decode(ids, skip_special=False) == "<bos> a red <unk> <eos>"
    with pytest.raises(IndexError, match="outside the vocabulary"):
        v.decode([99])


def test_encode_batch_pads_and_cuts():
    v = Vocab.build(["a red apple", "duck"])
    ids, lengths = v.encode_batch(["a red apple", "duck"], max_len=2)
    assert ids.tolist() == [[v.stoi["a"], v.stoi["red"]], [v.stoi["duck"], v.pad_id]]
    assert torch.equal(lengths, torch.tensor([2, 1]))


def test_empty_corpus_is_a_clear_error():
    with pytest.raises(ValueError, match="empty"):
        Vocab.build([])
    with pytest.raises(ValueError, match="empty list"):
        Vocab.build(["a"]).encode_batch([])


# ---------------------------------------------------------------- inflection

@pytest.mark.parametrize("noun, expected", [
    ("apple", "apples"), ("fish", "fish"), ("mouse", "mice"), ("box", "boxes"), ("berry", "berries"),
    ("key", "keys"), ("bus", "buses"), ("peach", "peaches"), ("leaf", "leaves"), ("sheep", "sheep"),
    ("red apple", "red apples"), ("field mouse", "field mice"), ("tomato", "tomatoes"), ("Tux", "Tuxes"),
    ("pair of glasses", "pairs of glasses"), ("cup of tea", "cups of tea"),
    ("birch at winter", "birches at winter"), ("man with a hat", "men with a hat"),
    ("snowman", "snowmen"), ("woman", "women"), ("human", "humans"), ("lionfish", "lionfish"),
    ("woodlouse", "woodlice"), ("goose", "geese"), ("letter S", "letter Ss"),
])
def test_plural(noun, expected):
    assert plural(noun) == expected


@pytest.mark.parametrize("phrase, expected", [
    ("apple", "an"), ("duck", "a"), ("owl", "an"), ("unicorn", "a"), ("umbrella", "an"),
    ("hour", "an"), ("horse", "a"), ("euro coin", "a"), ("one", "a"), ("egg", "an"),
    ("F-22", "an"), ("VW Beetle", "a"), ("UFO", "a"), ("S", "an"),
])
def test_article(phrase, expected):
    assert article(phrase) == expected




@pytest.mark.parametrize("word, expected", [
    ("apples", "apple"), ("berries", "berry"), ("boxes", "box"), ("mice", "mouse"), ("leaves", "leaf"),
    ("cactus", "cactus"), ("glasses", "glass"), ("clothes", "clothes"), ("bus", "bus"), ("news", "news"),
    ("red", "red"), ("fish", "fish"), ("as", "as"),
])
def test_singular(word, expected):
    assert singular(word) == expected


@pytest.mark.parametrize("noun", ["cactus", "apple", "mouse", "berry", "leaf", "snowman", "potato",
                                  "box", "sheep", "bus", "goose", "octopus"])
def test_plural_and_singular_agree(noun):
    # The grammar's "two cacti/cactuses" and the tag singulariser must land on the same word.
    assert singular(plural(noun)) == noun


def test_inflection_rejects_empty_input():
    with pytest.raises(ValueError, match="non-empty"):
        plural(" ")
    with pytest.raises(ValueError, match="non-empty"):
        article("")
