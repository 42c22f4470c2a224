import pytest
import torch

from mmcourse.text import Vocab, tokenize


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
