"""Notebook 05's helpers: data as tensors, batches of images, fusion models, accuracy, bias sets."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from datasets import Dataset, Features, Image, Value
from PIL import Image as PILImage
from sklearn.metrics import accuracy_score

from mmcourse.data.easyvqa import COLORS, SHAPES, image_facts
from mmcourse.data.splits import assert_disjoint
from mmcourse.referencing import vqa as V
from mmcourse.text import Vocab

ANSWERS = ["yes", "no", "red", "blue"]


def _rows(n_images=2):
    """Two 8 px images (red, blue) and five questions, two of them the same text."""
    colours = [(255, 0, 0), (0, 0, 255)]
    images, questions, answers, types, ids = [], [], [], [], []
    for i in range(n_images):
        picture = PILImage.new("RGB", (8, 8), colours[i % 2])
        for q, a, t in [("what color is it?", ["red", "blue"][i % 2], "color"),
                        ("is it red?", ["yes", "no"][i % 2], "yes/no")] + ([("is it blue?", "yes", "yes/no")] if i else []):
            images.append(picture), questions.append(q), answers.append(a), types.append(t), ids.append(10 + i)
    features = Features({"image": Image(), "question": Value("string"), "answer": Value("string"),
                         "question_type": Value("string"), "image_id": Value("int32")})
    return Dataset.from_dict({"image": images, "question": questions, "answer": answers,
                              "question_type": types, "image_id": ids}, features=features)


@pytest.fixture
def data():
    rows = _rows()
    vocab = Vocab.build(rows["question"])
    encoded = V.encode_vqa(rows, vocab, ANSWERS, size=4)
    return encoded.with_vectors(torch.arange(2 * 6, dtype=torch.float32).view(2, 6)), vocab


# ------------------------------------------------------------------ data

def test_encode_vqa_decodes_each_image_once_and_indexes_answers(data):
    d, vocab = data
    assert d.pixels.shape == (2, 3, 4, 4) and d.pixels.dtype == torch.uint8
    assert d.image_ids == [10, 11]
    assert d.image_of.tolist() == [0, 0, 1, 1, 1]
    assert d.answers.tolist() == [2, 0, 3, 1, 0]  # red, yes, blue, no, yes
    assert d.pixels[0, :, 0, 0].tolist() == [255, 0, 0] and d.pixels[1, :, 0, 0].tolist() == [0, 0, 255]
    assert vocab.decode(d.ids[1][:d.lengths[1]]) == "is it red ?"
    assert d.types == ["color", "yes/no", "color", "yes/no", "yes/no"]


def test_encode_vqa_explains_bad_input():
    rows = _rows()
    vocab = Vocab.build(rows["question"])
    with pytest.raises(ValueError, match="not in the answer list"):
        V.encode_vqa(rows, vocab, ["yes", "no"], size=4)
    with pytest.raises(KeyError, match="question_type"):
        V.encode_vqa(rows.remove_columns("question_type"), vocab, ANSWERS, size=4)
    with pytest.raises(ValueError, match="2 images"):
        V.encode_vqa(rows, vocab, ANSWERS, size=4).with_vectors(torch.zeros(3, 6))


def test_batches_hold_whole_images_and_each_distinct_question_once(data):
    d, vocab = data
    batches = V.QuestionsByImage(d)
    assert len(batches) == 2
    batch = batches.collate([batches[1], batches[0]])
    assert batch["images"].tolist() == [d.vectors[1].tolist(), d.vectors[0].tolist()]
    assert batch["rows"].tolist() == [2, 3, 4, 0, 1]
    assert batch["image_of"].tolist() == [0, 0, 0, 1, 1]
    assert batch["answers"].tolist() == d.answers[[2, 3, 4, 0, 1]].tolist()
    assert len(batch["ids"]) == 3  # "what color is it?" is asked of both images
    texts = [vocab.decode(batch["ids"][u]) for u in batch["question_of"].tolist()]
    assert texts == [d.questions[r].replace("?", " ?") for r in batch["rows"].tolist()]
    assert batch["lengths"].tolist() == [int((row != 0).sum()) for row in batch["ids"]]
    without = V.QuestionsByImage(V.encode_vqa(_rows(), vocab, ANSWERS, size=4))
    with pytest.raises(ValueError, match="with_vectors"):
        without.collate([without[0]])


def _collate_by_token_rows(data, items):
    """The collate step as first written: torch.unique over the batch's rows of tokens."""
    rows = torch.tensor([q for _, qs in items for q in qs.tolist()])
    image_of = torch.cat([torch.full((len(qs),), b) for b, (_, qs) in enumerate(items)])
    ids, question_of = torch.unique(data.ids[rows, :int(data.lengths[rows].max())], dim=0, return_inverse=True)
    return {"images": data.vectors[[i for i, _ in items]], "ids": ids, "lengths": (ids != 0).sum(1),
            "image_of": image_of, "question_of": question_of, "answers": data.answers[rows], "rows": rows}


def test_collate_gives_what_unique_over_token_rows_gives():
    # Random questions of 1-6 tokens from a 5-word vocabulary repeat often, also as different
    # lengths with a common start ([4, 5] and [4, 5, 6]); each batch must come out exactly as before.
    gen = torch.Generator().manual_seed(0)
    n_images, n_questions = 12, 80
    lengths = torch.randint(1, 7, (n_questions,), generator=gen)
    ids = torch.randint(4, 9, (n_questions, 8), generator=gen) * (torch.arange(8) < lengths[:, None])
    d = V.VQATensors(pixels=torch.zeros(n_images, 3, 2, 2, dtype=torch.uint8), image_ids=list(range(n_images)),
                     image_of=torch.randint(0, n_images, (n_questions,), generator=gen), ids=ids, lengths=lengths,
                     answers=torch.randint(0, 4, (n_questions,), generator=gen), types=["t"] * n_questions,
                     questions=[""] * n_questions, vectors=torch.randn(n_images, 3, generator=gen))
    batches = V.QuestionsByImage(d)
    for size in (1, 3, len(batches)):
        order = torch.randperm(len(batches), generator=gen).tolist()
        items = [batches[k] for k in order[:size]]
        got, expected = batches.collate(items), _collate_by_token_rows(d, items)
        assert got.keys() == expected.keys()
        for key in expected:
            assert got[key].dtype == expected[key].dtype and torch.equal(got[key], expected[key]), key


def test_subset_keeps_questions_and_images(data):
    d, _ = data
    part = V.subset(d, [4, 0])
    assert part.answers.tolist() == [0, 2] and part.image_of.tolist() == [1, 0]
    assert part.questions == [d.questions[4], d.questions[0]] and part.vectors is d.vectors


# ------------------------------------------------------------------ models

@pytest.mark.parametrize("fusion", V.FUSIONS)
def test_every_fusion_gives_logits_per_pair(data, fusion):
    d, vocab = data
    torch.manual_seed(0)
    model = V.VQAModel(len(vocab), len(ANSWERS), fusion, image_dim=6, dim=16, hidden=8)
    batches = V.QuestionsByImage(d)
    batch = batches.collate([batches[0], batches[1]])
    logits = model(*(batch[k] for k in V.INPUTS))
    assert logits.shape == (5, len(ANSWERS))
    assert hasattr(model, "image_proj") == (fusion != "question")
    assert hasattr(model, "question_encoder") == (fusion != "image")
    assert model.classifier[1].in_features == (32 if fusion == "concat" else 16)
    loss, logs = V.vqa_step(model, batch)
    loss.backward()
    assert 0.0 <= logs["acc"] <= 1.0


def test_product_fusion_multiplies_the_two_projections(data):
    d, vocab = data
    model = V.VQAModel(len(vocab), len(ANSWERS), "product", image_dim=6, dim=16, hidden=8).eval()
    batches = V.QuestionsByImage(d)
    batch = batches.collate([batches[0], batches[1]])
    image = model.encode_image(batch["images"])[batch["image_of"]]
    question = model.encode_question(batch["ids"], batch["lengths"])[batch["question_of"]]
    expected = model.classifier(image * question)
    assert torch.allclose(model(*(batch[k] for k in V.INPUTS)), expected)
    # The image vector is normalised: scaling the CNN features changes nothing.
    assert torch.allclose(model.encode_image(batch["images"] * 7), model.encode_image(batch["images"]), atol=1e-6)


def test_model_explains_bad_input():
    with pytest.raises(ValueError, match="fusion must be one of"):
        V.VQAModel(10, 4, "sum")
    model = V.VQAModel(10, 4, "product", image_dim=6, dim=8, hidden=8)
    ids, lengths = torch.tensor([[4, 5]]), torch.tensor([2])
    with pytest.raises(ValueError, match="one entry per pair"):
        model(torch.zeros(1, 6), ids, lengths, torch.tensor([0, 0]), torch.tensor([0]))


def test_models_run_on_the_meta_device():
    # torch's pad_packed_sequence cannot run on meta, so the LSTM is replaced by meta zeros there;
    # everything VQAModel adds around it (projections, gathers, fusion, classifier) runs on meta.
    for fusion in V.FUSIONS:
        model = V.VQAModel(10, 4, fusion, image_dim=6, dim=8, hidden=8).to("meta")
        model.encode_question = lambda ids, lengths: torch.zeros(len(ids), 8, device=ids.device)
        ids = torch.randint(4, 10, (3, 5)).to("meta")
        out = model(torch.zeros(2, 6, device="meta"), ids, torch.tensor([5, 3, 2]),
                    torch.tensor([0, 1, 1, 0], device="meta"), torch.tensor([0, 1, 2, 2], device="meta"))
        assert out.device.type == "meta" and out.shape == (4, 4)
    tagger = V.TagCNN(5, width=4).to("meta")
    assert tagger(torch.zeros(2, 3, 16, 16, device="meta")).device.type == "meta"


def test_predict_returns_probabilities_in_question_order(data):
    d, vocab = data
    model = V.VQAModel(len(vocab), len(ANSWERS), "product", image_dim=6, dim=16, hidden=8)
    probs = V.predict(model, d, batch_images=1)
    assert probs.shape == (5, 4) and torch.allclose(probs.sum(1), torch.ones(5))
    batches = V.QuestionsByImage(d)
    batch = batches.collate([batches[0], batches[1]])
    with torch.no_grad():
        direct = model(*(batch[k] for k in V.INPUTS)).softmax(-1)
    assert torch.allclose(probs[batch["rows"]], direct, atol=1e-6)


def test_fused_model_learns_a_question_that_needs_the_image():
    """'is it red?' / 'is it blue?' about red and blue images: neither side alone beats 0.5."""
    torch.manual_seed(0)
    vectors = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).repeat(8, 1)  # 16 images, red/blue alternating
    ids = torch.tensor([[4, 5], [4, 6]])                             # two distinct questions
    image_of = torch.arange(16).repeat_interleave(2)
    question_of = torch.tensor([0, 1]).repeat(16)
    answers = ((image_of % 2) == question_of).long()                # 1 = "yes" when colours agree
    scores = {}
    for fusion in ("product", "question"):
        torch.manual_seed(0)
        model = V.VQAModel(8, 2, fusion, image_dim=2, dim=8, hidden=8, dropout=0.0)
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        batch = {"images": vectors, "ids": ids, "lengths": torch.tensor([2, 2]), "image_of": image_of,
                 "question_of": question_of, "answers": answers}
        for _ in range(30):
            loss, logs = V.vqa_step(model, batch)
            opt.zero_grad(), loss.backward(), opt.step()
        scores[fusion] = logs["acc"]
    assert scores["product"] == 1.0 and scores["question"] == 0.5


# ------------------------------------------------------------------ the image encoder

def test_tag_targets_mask_unknown_groups():
    targets, known = V.tag_targets([["red", "circle"], ["triangle"]],
                                   {"color": ["red", "blue"], "shape": ["circle", "triangle"]},
                                   [[], ["color"]])
    assert targets.tolist() == [[1, 0, 1, 0], [0, 0, 0, 1]]
    assert known.tolist() == [[True] * 4, [False, False, True, True]]
    with pytest.raises(KeyError, match="'green'"):
        V.tag_targets([["green"]], {"color": ["red"]})


def test_tag_step_ignores_unknown_tags():
    torch.manual_seed(0)
    model = V.TagCNN(3, width=4)
    images = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    targets = torch.tensor([[1.0, 0, 0], [0, 1, 0]])
    known = torch.tensor([[True, True, False], [True, True, True]])
    loss = V.tag_step(model, (images, targets, known))
    logits = model(images.float() / 255)
    expected = F.binary_cross_entropy_with_logits(logits[known], targets[known])
    assert torch.allclose(loss, expected)
    vectors = V.image_vectors(model.encoder, images, batch_size=1)
    assert vectors.shape == (2, model.encoder.channels) and not model.encoder.training


# ------------------------------------------------------------------ evaluation

def test_accuracy_per_type_on_a_hand_checked_table():
    predicted = [0, 1, 2, 2, 1, 3]
    target = [0, 1, 1, 2, 0, 3]
    types = ["a", "a", "b", "b", "c", "c"]
    acc = V.accuracy_per_type(predicted, target, types)
    assert acc == pytest.approx({"all": 4 / 6, "a": 1.0, "b": 0.5, "c": 0.5})
    for kind in "abc":
        rows = [i for i, t in enumerate(types) if t == kind]
        assert acc[kind] == pytest.approx(accuracy_score([target[i] for i in rows], [predicted[i] for i in rows]))
    with pytest.raises(ValueError, match="one of each"):
        V.accuracy_per_type([0], [0, 1], ["a", "a"])


def test_answer_prior_picks_the_commonest_answer_per_type():
    answers = [3, 3, 1, 2, 2, 5, 0, 0]
    types = ["x", "x", "x", "y", "y", "y", "z", "z"]
    prior = V.answer_prior(answers, types)
    assert prior == {"x": 3, "y": 2, "z": 0}
    assert V.answer_prior([4, 1], ["t", "t"]) == {"t": 1}  # a tie goes to the smaller index
    assert V.prior_predictions(prior, ["z", "x", "y"]).tolist() == [0, 3, 2]
    with pytest.raises(KeyError, match="'w'"):
        V.prior_predictions(prior, ["w"])


# ------------------------------------------------------------------ bias

KEYS = ["red?"] * 6 + ["blue?"] * 4 + ["shape?"] * 3
ANS = [0, 0, 0, 0, 1, 1] + [0, 1, 1, 1] + [2, 3, 4]


def test_balanced_rows_give_every_answer_of_a_key_equally_often():
    rows = V.balanced_rows(KEYS, ANS, seed=0)
    kept = [(KEYS[r], ANS[r]) for r in rows]
    assert sorted(kept) == sorted([("red?", 0)] * 2 + [("red?", 1)] * 2 + [("blue?", 0), ("blue?", 1)]
                                  + [("shape?", 2), ("shape?", 3), ("shape?", 4)])
    assert rows == sorted(rows) and V.balanced_rows(KEYS, ANS, seed=0) == rows


def test_biased_rows_plant_the_dominant_answer():
    dominant = {"red?": 1, "blue?": 1, "shape?": 9}  # shape? has no answer 9: nothing kept
    rows = V.biased_rows(KEYS, ANS, dominant, share=0.75, seed=0)
    kept = [(KEYS[r], ANS[r]) for r in rows]
    # red?: both 1s, and round(2 * 0.25 / 0.75) = 1 other; blue?: three 1s and the one 0
    assert sorted(kept) == sorted([("red?", 1)] * 2 + [("red?", 0)] + [("blue?", 1)] * 3 + [("blue?", 0)])
    drawn = V.dominant_answers(KEYS, ANS, seed=3)
    assert set(drawn) == {"red?", "blue?", "shape?"} and drawn["shape?"] in (2, 3, 4)
    assert drawn == V.dominant_answers(KEYS, ANS, seed=3)
    with pytest.raises(ValueError, match="share"):
        V.biased_rows(KEYS, ANS, dominant, share=1.0, seed=0)


# ------------------------------------------------------------------ easy-VQA

def test_image_facts_read_colour_and_shape_off_questions():
    rows = Dataset.from_dict({
        "question": ["what color is the circle?", "is there not a red shape?", "is there a blue shape?",
                     "what shape is in the image?", "is there a triangle?", "does the image not contain a gray shape?"],
        "answer": ["red", "no", "no", "rectangle", "no", "yes"],
        "image_id": [1, 1, 1, 2, 2, 2]})
    assert image_facts(rows) == {1: {"color": "red", "shape": "circle"}, 2: {"color": None, "shape": "rectangle"}}
    clash = Dataset.from_dict({"question": ["what color is the shape?", "is there a blue shape?"],
                               "answer": ["red", "yes"], "image_id": [5, 5]})
    with pytest.raises(ValueError, match="image 5"):
        image_facts(clash)
    assert set(COLORS) | set(SHAPES) < set(__import__("mmcourse.data.easyvqa", fromlist=["answers"]).answers())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_easyvqa_splits_share_no_image(seed):
    pytest.importorskip("easy_vqa")
    parts = V.easyvqa_splits(seed)
    assert len(parts["test"]) == 9673 and len(parts["train"]) + len(parts["validation"]) == 38575
    # One row per image: assert_disjoint reads every row, and the questions add nothing here.
    columns = {name: part.select_columns(["image_id", "image_sha"]).to_dict() for name, part in parts.items()}
    images = {name: Dataset.from_dict({"image_sha": sorted(set(c["image_sha"]))}) for name, c in columns.items()}
    assert_disjoint(images, ["image_sha"])
    ids = {name: Dataset.from_dict({"image_id": sorted(set(columns[name]["image_id"]))})
           for name in ("train", "validation")}
    assert_disjoint(ids, ["image_id"])
    assert len(ids["validation"]) == 400 and len(images["test"]) == 1000
