"""Notebook 03: captioned scenes, decoders, attention, beam search, BLEU, pointing."""
import math

import numpy as np
import pytest
import torch
from PIL import Image
from scene_helpers import fake_scene, shape_stamp
from torchmetrics.text import BLEUScore

from mmcourse.data import captions as DC
from mmcourse.data.scenes import Stamp
from mmcourse.data.splits import assert_disjoint
from mmcourse.text import Vocab
from mmcourse.translating import captioning as C

# ---------------------------------------------------------------- data


def test_colour_name_needs_one_clear_colour():
    assert DC.colour_name(Image.new("RGBA", (20, 20), (220, 20, 20, 255))) == "red"
    assert DC.colour_name(Image.new("RGBA", (20, 20), (30, 60, 220, 255))) == "blue"
    assert DC.colour_name(Image.new("RGBA", (20, 20), (128, 128, 128, 255))) == "grey"
    half = Image.new("RGBA", (20, 20), (220, 20, 20, 255))
    half.paste(Image.new("RGBA", (20, 10), (30, 200, 30, 255)), (0, 0))
    assert DC.colour_name(half) is None  # red and green, half each


def test_captions_say_what_how_many_and_where():
    scene = fake_scene([("red bird", 20, 60), ("red bird", 30, 70), ("fish", 100, 64)])
    caps = DC.captions(scene)
    assert caps[0] == "two red birds to the left of a fish"
    assert "there are two red birds to the left of a fish" in caps
    assert "two red birds and a fish" in caps
    assert "two red birds on the left and a fish on the right" in caps
    assert "a fish to the right of two red birds" in caps
    assert len(caps) == len(set(caps))
    single = DC.captions(fake_scene([("hat", 64, 64)]))
    assert single == ["a hat in the middle", "there is a hat in the middle", "a hat"]


def test_composed_rows_have_objects_inside_the_picture():
    stamps = [shape_stamp("apple"), shape_stamp("duck", "triangle"), shape_stamp("cat", "square")]
    rows = DC.compose_captioned(stamps, ["s0", "s1", "s2"], ["fruit", "bird", "animal"], n=12, seed=0, size=48)
    assert len(rows) == 12
    for row in rows:
        assert row["image"].size == (48, 48)
        assert 1 <= len(row["labels"]) <= 3 and len(set(row["labels"])) <= 2
        assert len(row["boxes"]) == len(row["nouns"]) == len(row["stamp_shas"]) == len(row["labels"])
        assert all(0 <= x0 < x1 <= 48 and 0 <= y0 < y1 <= 48 for x0, y0, x1, y1 in row["boxes"])
        assert row["captions"]
    again = DC.compose_captioned(stamps, ["s0", "s1", "s2"], ["fruit", "bird", "animal"], n=12, seed=0, size=48)
    assert [r["captions"] for r in rows] == [r["captions"] for r in again]


@pytest.fixture(scope="module")
def caption_stamps():
    from mmcourse.data.tuxpaint import load_stamps
    return DC.caption_stamps(load_stamps())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stamp_splits_share_no_stamp_and_no_picture(caption_stamps, seed):
    parts = DC.split_stamps(caption_stamps, seed)
    assert_disjoint(parts, ["id", "image_sha"])
    train_nouns = set(parts["train"]["noun"])
    assert train_nouns == set(DC.NOUNS.values())  # every noun can be learned
    assert set(parts["test"]["noun"]) <= train_nouns


# ---------------------------------------------------------------- tensors

def test_caption_pairs_shift_targets_and_pick_among_references():
    vocab = Vocab.build(["a bird", "two birds on the left"])
    features = torch.randn(2, 4, 3)
    data = C.CaptionPairs(features, [["a bird"], ["a bird", "two birds on the left"]], vocab, max_len=6)
    item = data[0]
    ids = vocab.encode("a bird", add_bos=True, add_eos=True)
    assert item["inputs"][:3].tolist() == ids[:3] and item["targets"][:3].tolist() == ids[1:]
    assert item["inputs"].shape == item["targets"].shape == (6,) and item["targets"][3:].eq(0).all()
    torch.manual_seed(0)
    seen = {tuple(data[1]["targets"].tolist()) for _ in range(20)}
    assert len(seen) == 2


# ---------------------------------------------------------------- decoders

@pytest.fixture(params=["show_and_tell", "show_attend_tell"])
def decoder(request):
    torch.manual_seed(0)
    cls = C.ShowAndTell if request.param == "show_and_tell" else C.ShowAttendTell
    return cls(feature_dim=8, vocab_size=12, embed=6, hidden=10)


def test_teacher_forcing_shapes(decoder):
    features, inputs = torch.randn(3, 5, 8), torch.randint(0, 12, (3, 7))
    logits, alphas = decoder(features, inputs)
    assert logits.shape == (3, 7, 12)
    if isinstance(decoder, C.ShowAttendTell):
        assert alphas.shape == (3, 7, 5)
    else:
        assert alphas is None
    with pytest.raises(ValueError, match="annotation vectors"):
        decoder(torch.randn(3, 8, 2, 2), inputs)


def test_attention_weights_sum_to_one():
    torch.manual_seed(0)
    sat = C.ShowAttendTell(feature_dim=8, vocab_size=12, embed=6, hidden=10)
    alpha = sat.attend(sat.att_features(torch.randn(4, 9, 8)), torch.randn(4, 10))
    assert alpha.shape == (4, 9) and (alpha >= 0).all()
    assert torch.allclose(alpha.sum(dim=1), torch.ones(4))


def test_decoders_stay_on_the_input_device(decoder):
    decoder = decoder.to("meta")
    features, inputs = torch.randn(2, 5, 8).to("meta"), torch.randint(0, 12, (2, 4)).to("meta")
    logits, alphas = decoder(features, inputs)
    loss, logs = C.caption_loss(logits, inputs, alphas, penalty=1.0)
    assert logits.device.type == loss.device.type == "meta"
    assert all(v.device.type == "meta" for v in logs.values())


def test_doubly_stochastic_penalty_by_hand():
    # Uniform attention over L = 4 locations for 2 real steps (then padding): each location gets
    # 2 / 4 of attention in total, so the penalty is 4 * (1 - 0.5)^2 = 1 per image.
    logits = torch.zeros(1, 3, 5)
    targets = torch.tensor([[4, 4, 0]])
    alphas = torch.full((1, 3, 4), 0.25)
    loss, logs = C.caption_loss(logits, targets, alphas, penalty=0.5)
    assert float(logs["attention_penalty"]) == pytest.approx(1.0)
    assert loss.item() == pytest.approx(math.log(5) + 0.5)
    plain, _ = C.caption_loss(logits, targets)
    assert plain.item() == pytest.approx(math.log(5))


def test_a_few_epochs_learn_to_caption_two_kinds_of_image():
    from mmcourse.training import fit, make_loader
    torch.manual_seed(0)
    vocab = Vocab.build(["a red bird", "a blue fish"])
    features = torch.cat([torch.ones(20, 4, 3), -torch.ones(20, 4, 3)]) + 0.1 * torch.randn(40, 4, 3)
    caps = [["a red bird"]] * 20 + [["a blue fish"]] * 20
    model = C.ShowAttendTell(feature_dim=3, vocab_size=len(vocab), embed=8, hidden=16, attention=8)
    loader = make_loader(C.CaptionPairs(features, caps, vocab, max_len=5), batch_size=20, shuffle=True,
                         collate_fn=C.CaptionPairs.collate)
    fit(model, loader, lambda m, b: C.caption_step(m, b, penalty=0.1), epochs=20, lr=2e-2, grad_clip=5.0,
        progress=False)
    ids, _ = C.greedy_decode(model, features[[0, 39]], max_len=5)
    assert [C.decode_ids(vocab, row) for row in ids] == ["a red bird", "a blue fish"]


# ---------------------------------------------------------------- beam search


class ToyDecoder(torch.nn.Module):
    """A decoder whose next-word probabilities depend only on the last word: a fixed table.

    Words: 0 pad, 1 unk, 2 <bos>, 3 <eos>, 4 "A", 5 "B". From <bos>: A 0.6, B 0.4. After A: A or
    0.36, B 0.34, <eos> 0.3. After B: <eos> 0.9. Greedy takes A and never stops choosing A or B;
    the most probable caption is "B <eos>" (0.4 * 0.9 = 0.36, against 0.6 * 0.3 = 0.18 for "A <eos>").
    """

    def __init__(self):
        super().__init__()
        table = torch.full((6, 6), 1e-9)
        table[2, 4], table[2, 5] = 0.6, 0.4
        table[4, 4], table[4, 5], table[4, 3] = 0.36, 0.34, 0.3
        table[5, 3], table[5, 4] = 0.9, 0.1
        table[3, 3] = table[0, 3] = table[1, 3] = 1.0
        self.register_buffer("log_table", table.log())

    def init_state(self, features):
        return features.new_zeros(len(features), 1)

    def step(self, tokens, state, features):
        return self.log_table[tokens], state, features[:, :, 0].softmax(dim=-1)


def test_beam_search_finds_the_best_sequence_that_greedy_misses():
    toy, features = ToyDecoder(), torch.randn(1, 3, 2)
    [(ids, alphas, score)] = C.beam_search(toy, features, width=2, max_len=6)
    assert ids == [5, 3] and score == pytest.approx(math.log(0.36), abs=1e-5)
    assert alphas.shape == (2, 3)
    greedy, _ = C.greedy_decode(toy, features, max_len=6)
    assert greedy[0, 0].item() == 4 and 3 not in greedy[0].tolist()  # A, then never <eos>
    [(ids1, _, _)] = C.beam_search(toy, features, width=1, max_len=6)
    assert ids1 == greedy[0].tolist()                                 # width 1 is greedy
    with pytest.raises(ValueError, match="annotation vectors"):
        C.beam_search(toy, torch.randn(3, 2))


@torch.no_grad()
def beam_search_one_image(decoder, features, width, max_len, bos_id=2, eos_id=3):
    """Reference: the textbook beam search of one image [1, L, C], with Python lists of beams."""
    state = decoder.init_state(features)
    tokens, scores = torch.tensor([bos_id]), torch.zeros(1)
    words, attention, finished = [[]], [[]], []
    for _ in range(max_len):
        logits, state, alpha = decoder.step(tokens, state, features.expand(len(tokens), -1, -1))
        total = scores[:, None] + logits.log_softmax(dim=-1)
        top, flat = total.flatten().topk(min(width, total.numel()))
        keep = []
        for s, p, w in zip(top.tolist(), (flat // total.shape[1]).tolist(), (flat % total.shape[1]).tolist()):
            seq, att = words[p] + [w], attention[p] + ([alpha[p]] if alpha is not None else [])
            (finished.append((s, seq, att)) if w == eos_id else keep.append((s, p, w, seq, att)))
        best_done = max((f[0] for f in finished), default=-math.inf)
        keep = [k for k in keep if k[0] > best_done]
        if not keep:
            break
        index = torch.tensor([k[1] for k in keep])
        state = tuple(s[index] for s in state) if isinstance(state, tuple) else state[index]
        tokens, scores = torch.tensor([k[2] for k in keep]), torch.tensor([k[0] for k in keep])
        words, attention = [k[3] for k in keep], [k[4] for k in keep]
    if not finished:
        finished = [(scores[0].item(), words[0], attention[0])]
    score, seq, att = max(finished, key=lambda f: f[0])
    return seq, torch.stack(att) if att else None, score


@pytest.mark.parametrize("width", [1, 3, 5])
def test_batched_beam_search_gives_each_image_its_own_beam_search(decoder, width):
    # An untrained decoder with large outputs and images: captions of 1 to 7 words (max_len) that
    # end at different steps, so images drop out of the batch at different times.
    torch.manual_seed(1)
    with torch.no_grad():
        decoder.out.weight.mul_(8)
        decoder.out.bias[3] += 1.0
    features = torch.randn(16, 5, 8) * 5
    found = C.beam_search(decoder, features, width=width, max_len=7)
    assert len(found) == 16
    lengths = set()
    for i, (ids, alphas, score) in enumerate(found):
        ref_ids, ref_alphas, ref_score = beam_search_one_image(decoder.eval(), features[i:i + 1], width, 7)
        assert ids == ref_ids and score == pytest.approx(ref_score, abs=1e-4)
        if ref_alphas is None:
            assert alphas is None
        else:
            assert torch.allclose(alphas, ref_alphas, atol=1e-6)
        lengths.add(len(ids))
    assert len(lengths) > 1  # the images really end at different steps


def test_blind_caption_follows_the_most_frequent_next_word():
    # "a red bird" 1 (two references of one image, 0.5 each), "a red fish" 0.5, "a blue fish" 0.5,
    # "two hats" 1: a (2) > two (1), then red (1.5) > blue (0.5), then bird (1) > fish (0.5), then stop.
    assert C.blind_caption([["a red bird", "a red bird"], ["a red fish", "a blue fish"], ["two hats"]]) == "a red bird"
    # Each image has one unit of weight however many references it has: a (2) beats two (1), though
    # "two hats" is written four times; then fish and bird tie (1 each) and a-z picks "bird".
    assert C.blind_caption([["two hats"] * 4, ["a fish"], ["a bird"]]) == "a bird"
    # Stopping competes with going on, and wins a tie.
    assert C.blind_caption([["a bird"], ["a bird"], ["a bird on the left"]]) == "a bird"
    assert C.blind_caption([["a bird"], ["a bird on the left"], ["a bird on the left"]]) == "a bird on the left"
    assert C.blind_caption([["a bird"], ["a bird on the left"]]) == "a bird"
    with pytest.raises(ValueError, match="at least one"):
        C.blind_caption([])


# ---------------------------------------------------------------- BLEU

def test_bleu_by_hand():
    hyp, ref = "a b c d".split(), ["a b c e".split()]
    # p1 = 3/4, p2 = 2/3, p3 = 1/2, p4 = 0/1; same length, so no brevity penalty.
    assert C.corpus_bleu([hyp], [ref], max_n=2) == pytest.approx(math.sqrt(3 / 4 * 2 / 3))
    assert C.corpus_bleu([hyp], [ref], max_n=3) == pytest.approx((3 / 4 * 2 / 3 * 1 / 2) ** (1 / 3))
    assert C.corpus_bleu([hyp], [ref], max_n=4) == 0.0
    # Clipping: "the" counts at most once, as often as in the reference.
    assert C.corpus_bleu([["the", "the", "the"]], [[["the", "cat"]]], max_n=1) == pytest.approx(1 / 3)
    # Brevity: a 2-word hypothesis against a 4-word reference: exp(1 - 4 / 2).
    assert C.corpus_bleu([["a", "b"]], [[["a", "b", "c", "d"]]], max_n=1) == pytest.approx(math.exp(-1))


def test_bleu_matches_torchmetrics():
    rng = np.random.default_rng(0)
    words = "a the bird fish two red blue on left right of to".split()
    for trial in range(5):
        hyps = [" ".join(rng.choice(words, rng.integers(3, 9))) for _ in range(30)]
        refs = [[" ".join(rng.choice(words, rng.integers(3, 9))) for _ in range(rng.integers(1, 4))] for _ in range(30)]
        tokens, references = [h.split() for h in hyps], [[r.split() for r in rs] for rs in refs]
        counted_to_4 = C.bleu_statistics(tokens, references, max_n=4)   # one count serves BLEU-1..4
        for n in (1, 2, 3, 4):
            theirs = BLEUScore(n_gram=n)(hyps, refs).item()
            assert C.corpus_bleu(tokens, references, max_n=n) == pytest.approx(theirs, abs=1e-6), (trial, n)
            assert C.bleu_from_statistics(counted_to_4, n) == pytest.approx(theirs, abs=1e-6), (trial, n)


# ---------------------------------------------------------------- pointing

def test_pointing_checks_the_attention_peak_against_the_box():
    # 8 px image, 2x2 grid; the bird's box is the top-left quadrant: a quarter of the image.
    alphas = torch.tensor([[0.1, 0.1, 0.1, 0.7],      # "a": not a noun, skipped
                           [0.7, 0.1, 0.1, 0.1],      # "bird": peak in the top-left cell -> hit
                           [0.1, 0.1, 0.1, 0.7]])     # "birds": bottom-right -> miss
    out = C.pointing(alphas, ["a", "bird", "birds"], (2, 2), 8, [[0, 0, 4, 4]], ["bird"],
                     {"bird": "bird", "birds": "bird", "fish": "fish"})
    assert out == [(True, 0.25), (False, 0.25)]
    assert C.pointing(alphas, ["fish"], (2, 2), 8, [[0, 0, 4, 4]], ["bird"], {"fish": "fish"}) == []
    with pytest.raises(ValueError, match="grid"):
        C.pointing(alphas, ["bird"], (3, 3), 8, [[0, 0, 4, 4]], ["bird"], {"bird": "bird"})


def test_bleu_statistics_add_up_and_bootstrap_spreads_around_the_corpus_value():
    rng = np.random.default_rng(1)
    words = "a bird fish two red on left".split()
    hyps = [list(rng.choice(words, rng.integers(3, 7))) for _ in range(40)]
    refs = [[list(rng.choice(words, rng.integers(3, 7))) for _ in range(2)] for _ in range(40)]
    stats = C.bleu_statistics(hyps, refs, max_n=4)
    assert stats.shape == (40, 10)
    for n in (1, 2, 3, 4):
        assert C.bleu_from_statistics(stats, n) == pytest.approx(C.corpus_bleu(hyps, refs, n))
    boots = C.bootstrap_bleu(stats, max_n=2, samples=50)
    assert len(boots) == 50 and boots.std() > 0
    assert abs(boots.mean() - C.corpus_bleu(hyps, refs, 2)) < 3 * boots.std()
    with pytest.raises(ValueError, match="up to 4"):
        C.bleu_from_statistics(stats, 5)


def test_collate_cuts_padding_after_the_longest_caption():
    vocab = Vocab.build(["a bird", "two red birds on the left"])
    data = C.CaptionPairs(torch.randn(2, 4, 3), [["a bird"], ["a bird"]], vocab, max_len=9)
    batch = C.CaptionPairs.collate([data[0], data[1]])
    assert batch["inputs"].shape == batch["targets"].shape == (2, 3)   # "a bird <eos>"
    assert batch["features"].shape == (2, 4, 3)


def test_scene_tagger_pools_location_scores():
    torch.manual_seed(0)
    images = torch.rand(2, 3, 16, 16)
    tagger = C.SceneTagger(n_tags=5, width=4, depth=2, pool="max")
    per_location = tagger.head(tagger.cnn.feature_map(images).flatten(2).transpose(1, 2))
    assert torch.allclose(tagger(images), per_location.amax(dim=1))
    tagger.pool = "mean"
    assert torch.allclose(tagger(images), tagger.head(tagger.cnn.pooled(images)), atol=1e-6)
    with pytest.raises(ValueError, match="pool"):
        C.SceneTagger(5, pool="sum")
