"""Notebook 03: captioned scenes, decoders, attention, beam search, BLEU, pointing."""
import math

import numpy as np
import pytest
import torch
from PIL import Image
from nltk.translate.bleu_score import corpus_bleu as nltk_corpus_bleu
from sacrebleu.metrics import BLEU
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


def _random_corpus(rng, words, refs_per_caption=(1, 4)):
    # Captions of at least 4 words: nltk counts one 4-gram for a shorter one (a denominator of
    # max(1, 0)), which sacrebleu, torchmetrics and the paper do not. References run longer, so
    # that the brevity penalty, and with it the closest reference length, counts.
    hyps = [list(rng.choice(words, rng.integers(4, 8))) for _ in range(30)]
    refs = [[list(rng.choice(words, rng.integers(3, 11))) for _ in range(rng.integers(*refs_per_caption))]
            for _ in range(30)]
    return hyps, refs


def _length_tie(hyp, refs):
    """Whether two references of different lengths are equally close to the hypothesis."""
    gaps = [len(r) - len(hyp) for r in refs]
    return any(-g in gaps for g in gaps if g > 0)


@pytest.mark.filterwarnings("ignore:\\nThe hypothesis contains 0 counts:UserWarning")  # nltk on a BLEU of 0
def test_bleu_matches_nltk():
    # nltk's corpus_bleu takes tokens as they are and, without a smoothing function, uses the
    # plain clipped precisions (a zero one gives ~1e-77, not 0), so it must agree to rounding.
    # Four words only, so that even BLEU-4 is far from 0 (12 words made BLEU-3 and 4 mostly 0).
    rng = np.random.default_rng(0)
    words = "a bird red on".split()
    ties = 0
    for trial in range(5):
        hyps, refs = _random_corpus(rng, words)
        ties += sum(_length_tie(h, rs) for h, rs in zip(hyps, refs))
        counted_to_4 = C.bleu_statistics(hyps, refs, max_n=4)   # one count serves BLEU-1..4
        for n in (1, 2, 3, 4):
            theirs = nltk_corpus_bleu(refs, hyps, weights=(1 / n,) * n)
            assert C.corpus_bleu(hyps, refs, max_n=n) == pytest.approx(theirs, abs=1e-9), (trial, n)
            assert C.bleu_from_statistics(counted_to_4, n) == pytest.approx(theirs, abs=1e-9), (trial, n)
    assert ties > 0  # the corpora include references tied for closest length
    assert C.corpus_bleu(hyps, refs, max_n=4) > 0.1


def test_bleu_matches_torchmetrics_with_one_reference_each():
    # torchmetrics' BLEUScore takes the first of two equally close references (sacrebleu, nltk and
    # the COCO scorer the shorter one); with one reference per caption there is no such tie.
    rng = np.random.default_rng(0)
    words = "a bird red on".split()
    for trial in range(3):
        hyps, refs = _random_corpus(rng, words, refs_per_caption=(1, 2))
        for n in (1, 2, 3, 4):
            theirs = BLEUScore(n_gram=n)([" ".join(h) for h in hyps], [[" ".join(r) for r in rs] for rs in refs])
            assert C.corpus_bleu(hyps, refs, max_n=n) == pytest.approx(theirs.item(), abs=1e-6), (trial, n)


def test_bleu_takes_the_shorter_of_two_equally_close_references():
    # Caption 1 has 6 words; its references have 7 and 5 (the longer listed first): both 1 away.
    hyps = ["a red bird on the left".split(), "two blue fish swim".split()]
    refs = [["a red bird sits on the left".split(), "a red bird on left".split()],
            ["two blue fish swim to the right".split()]]
    assert C.bleu_statistics(hyps, refs, max_n=1)[:, -1].tolist() == [5, 7]
    # Every word matches, so BLEU-1 is the brevity penalty alone: c = 10 words, r = 5 + 7 (not 7 + 7).
    assert C.corpus_bleu(hyps, refs, max_n=1) == pytest.approx(math.exp(1 - 12 / 10), abs=1e-12)
    streams = [[" ".join(r[0]) for r in refs], [" ".join(r[1]) if len(r) > 1 else None for r in refs]]
    for n in (1, 2, 3, 4):
        ours = C.corpus_bleu(hyps, refs, max_n=n)
        assert ours == pytest.approx(nltk_corpus_bleu(refs, hyps, weights=(1 / n,) * n), abs=1e-9), n
        # sacrebleu on whitespace-split text (tokenize="none"), unsmoothed, in percent.
        sacre = BLEU(tokenize="none", smooth_method="none", max_ngram_order=n, effective_order=False)
        assert ours == pytest.approx(sacre.corpus_score([" ".join(h) for h in hyps], streams).score / 100,
                                     abs=1e-9), n


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


# ---------------------------------------------------------------- baselines and spreads

NOUN_FORMS = {"bird": "bird", "birds": "bird", "fish": "fish", "hat": "hat", "hats": "hat"}


def test_noun_scores_are_micro_precision_and_recall_as_sklearn_counts_them():
    from sklearn.metrics import precision_score, recall_score
    from sklearn.preprocessing import MultiLabelBinarizer
    captions = ["two birds and a fish", "a hat", "a fish on the left", "there is nothing"]
    truth = [["bird", "bird"], ["hat", "fish"], ["bird"], ["hat"]]
    precision, recall = C.noun_scores(captions, truth, NOUN_FORMS)
    binarize = MultiLabelBinarizer(classes=["bird", "fish", "hat"])
    named = binarize.fit_transform([C.named_nouns(c, NOUN_FORMS) for c in captions])
    true = binarize.transform([set(t) for t in truth])
    assert precision == pytest.approx(precision_score(true, named, average="micro"))   # 2 of 4
    assert recall == pytest.approx(recall_score(true, named, average="micro"))         # 2 of 5
    assert (precision, recall) == (0.5, 0.4)
    with pytest.raises(ValueError, match="scenes"):
        C.noun_scores(captions, truth[:2], NOUN_FORMS)


def test_noun_precision_chance_is_the_mean_of_every_constant_noun():
    truth = [["bird"], ["bird", "fish"], ["hat"], ["bird", "bird"]]
    vocabulary = ["bird", "fish", "hat", "tree"]
    chance = C.noun_precision_chance(truth, vocabulary)
    constant = [C.noun_scores([noun] * len(truth), truth, {n: n for n in vocabulary})[0] for noun in vocabulary]
    assert chance == pytest.approx(np.mean(constant)) == pytest.approx((1 + 2 + 1 + 1) / 4 / 4)
    # The same number by drawing: one uniformly random noun per scene.
    rng = np.random.default_rng(0)
    drawn = [C.noun_scores(list(rng.choice(vocabulary, len(truth))), truth, {n: n for n in vocabulary})[0]
             for _ in range(4000)]
    assert np.mean(drawn) == pytest.approx(chance, abs=0.01)
    assert C.best_constant_noun(truth, vocabulary) == "bird"                  # in 3 scenes of 4
    assert C.best_constant_noun([["hat"], ["fish"]], vocabulary) == "fish"    # a tie: a-z


def test_tag_scores_give_the_all_negative_predictor_nothing_but_its_accuracy():
    from sklearn.metrics import average_precision_score
    tags = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=bool)   # tag 3 never positive
    none = C.tag_scores(np.full(tags.shape, -1.0), tags)
    assert none["accuracy"] == pytest.approx(1 - tags.mean()) and none["micro F1"] == 0
    assert none["mAP"] == pytest.approx(np.mean([0.5, 0.25]))                  # each tag's positive rate
    perfect = C.tag_scores(np.where(tags, 2.0, -2.0), tags)
    assert perfect == {"mAP": 1.0, "micro F1": 1.0, "accuracy": 1.0}
    scores = np.array([[0.5, -1, 0], [0.2, 0.1, -1], [-0.3, -2, 0], [0.9, -1, 1]])
    assert C.tag_scores(scores, tags)["mAP"] == pytest.approx(
        np.mean([average_precision_score(tags[:, k], scores[:, k]) for k in (0, 1)]))
    with pytest.raises(ValueError, match="shape"):
        C.tag_scores(scores[:, :2], tags)


def test_pos_weight_balances_each_tags_positives_and_negatives():
    tags = torch.tensor([[1, 0, 0], [0, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=torch.bool)
    assert C.balancing_pos_weight(tags).tolist() == [3.0, 3.0, 1.0]
    torch.manual_seed(0)
    tagger = C.SceneTagger(3, width=4, depth=2)
    batch = {"image": torch.rand(4, 3, 16, 16), "tags": tags}
    plain, _ = C.tagger_step(tagger, batch)
    same, _ = C.tagger_step(tagger, batch, pos_weight=torch.ones(3))
    weighted, _ = C.tagger_step(tagger, batch, pos_weight=C.balancing_pos_weight(tags))
    logits = tagger(batch["image"])
    expected = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor([3.0, 3.0, 1.0]))(logits, tags.float())
    assert same.item() == pytest.approx(plain.item()) and weighted.item() == pytest.approx(expected.item())


def test_fixed_caption_bleu_is_corpus_bleu_of_one_caption_said_everywhere():
    rng = np.random.default_rng(3)
    words = "a bird red".split()
    refs = [[list(rng.choice(words, rng.integers(3, 11))) for _ in range(rng.integers(1, 4))] for _ in range(25)]
    candidates = [list(rng.choice(words, rng.integers(4, 9))) for _ in range(12)] + [refs[0][0]]
    fast = C.fixed_caption_bleu(candidates, refs, max_n=4)
    for cand, ours in zip(candidates, fast):
        assert ours == pytest.approx(C.corpus_bleu([cand] * len(refs), refs, max_n=4), abs=1e-12)
    # nltk counts the n-grams of captions shorter than n differently, and warns on a BLEU of 0.
    scored = [(cand, ours) for cand, ours in zip(candidates[:12], fast) if ours > 0]
    assert len(scored) >= 8
    for cand, ours in scored:
        assert ours == pytest.approx(nltk_corpus_bleu(refs, [cand] * len(refs)), abs=1e-9)
    short = [["a", "bird"]]                          # no 3- or 4-gram: BLEU-4 0, BLEU-2 not
    assert C.fixed_caption_bleu(short, refs, max_n=4)[0] == 0
    assert C.fixed_caption_bleu(short, refs, max_n=2)[0] == pytest.approx(C.corpus_bleu(short * len(refs), refs, 2))
    best, score = C.best_fixed_caption([" ".join(c) for c in candidates], refs)
    assert score == pytest.approx(fast.max()) and best == " ".join(candidates[int(fast.argmax())])
    with pytest.raises(ValueError, match="candidate"):
        C.best_fixed_caption([], refs)


def test_stamp_bootstrap_weights_drop_scenes_of_undrawn_stamps():
    scenes = [["s1"], ["s1", "s2"], ["s2", "s2"], ["s3"], ["s1", "s3"]]
    weights = C.stamp_bootstrap_weights(scenes, samples=300, seed=0)
    assert weights.shape == (300, 5) and (weights >= 0).all()
    assert np.array_equal(weights, C.stamp_bootstrap_weights(scenes, samples=300, seed=0))
    # A scene counts as the product of its distinct stamps' draws: s2 twice in a scene is one stamp.
    s1, s2, s3 = weights[:, 0], weights[:, 2], weights[:, 3]
    assert np.array_equal(weights[:, 1], s1 * s2) and np.array_equal(weights[:, 4], s1 * s3)
    assert np.array_equal(s1 + s2 + s3, np.full(300, 3.0))        # three stamps drawn each time
    assert ((weights[:, 1] == 0) == ((s1 == 0) | (s2 == 0))).all()
    # One stamp per scene: the ordinary bootstrap of scenes (weights sum to N, each 1 on average).
    single = C.stamp_bootstrap_weights([[f"s{i}"] for i in range(50)], samples=400, seed=1)
    assert (single.sum(axis=1) == 50).all() and single.mean() == pytest.approx(1.0)
    assert single.var(axis=0).mean() == pytest.approx(1 - 1 / 50, abs=0.1)   # multinomial variance


@pytest.mark.filterwarnings("ignore:\\nThe hypothesis contains 0 counts:UserWarning")  # a draw that keeps few scenes
def test_cluster_bootstrap_bleu_is_bleu_of_the_corpus_repeated_by_weight():
    rng = np.random.default_rng(2)
    words = "a bird red".split()
    hyps = [list(rng.choice(words, rng.integers(4, 8))) for _ in range(30)]
    refs = [[list(rng.choice(words, rng.integers(3, 9))) for _ in range(2)] for _ in range(30)]
    stamps = [[f"s{i % 7}", f"s{(i * 3) % 5}"] for i in range(30)]
    stats = C.bleu_statistics(hyps, refs, max_n=4)
    boots = C.cluster_bootstrap_bleu(stats, stamps, samples=20, seed=4)
    weights = C.stamp_bootstrap_weights(stamps, samples=20, seed=4).astype(int)
    for w, ours in zip(weights, boots):
        keep = np.repeat(np.arange(30), w)
        repeated = nltk_corpus_bleu([refs[i] for i in keep], [hyps[i] for i in keep])
        assert ours == pytest.approx(repeated, abs=1e-9)
    assert boots.std() > 0 and (boots > 0).mean() > 0.5
    with pytest.raises(ValueError, match="scenes"):
        C.cluster_bootstrap_bleu(stats, stamps[:3])


def test_noun_precision_bootstrap_is_noun_precision_of_the_corpus_repeated_by_weight():
    captions = ["two birds and a fish", "a hat", "a fish on the left", "there is nothing", "a bird"]
    truth = [["bird", "bird"], ["hat", "fish"], ["bird"], ["hat"], ["bird", "fish"]]
    hits = C.noun_hits(captions, truth, NOUN_FORMS)
    assert hits.tolist() == [[1, 2, 1], [1, 1, 2], [0, 1, 1], [0, 0, 1], [1, 1, 2]]
    weights = C.stamp_bootstrap_weights([[f"s{i}"] for i in range(5)], samples=30, seed=0)
    for w, ours in zip(weights, C.noun_precision_bootstrap(hits, weights)):
        keep = np.repeat(np.arange(5), w.astype(int))
        assert ours == pytest.approx(C.noun_scores([captions[i] for i in keep], [truth[i] for i in keep],
                                                   NOUN_FORMS)[0])
    with pytest.raises(ValueError, match="weights"):
        C.noun_precision_bootstrap(hits, weights[:, :3])
