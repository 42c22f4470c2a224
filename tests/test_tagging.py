import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from mmcourse.data.tuxpaint import family_of
from mmcourse.encoders import ImageCNN
from mmcourse.matching import tagging as T
from mmcourse.retrieval import recall_at_k


def _rgba(colour, size=(40, 30)):
    image = Image.new("RGBA", (size[0] + 20, size[1] + 20), (0, 0, 0, 0))
    image.paste(Image.new("RGBA", size, colour), (10, 10))
    return image


# ------------------------------------------------------------------ tags

def test_tag_vocabulary_counts_items_and_orders_by_frequency():
    tags = [["animal", "bird", "bird"], ["animal", "fish"], ["food", "fish"], ["animal"], ["food"]]
    assert T.tag_vocabulary(tags, min_count=2) == ["animal", "fish", "food"]  # "bird" is on one item
    assert T.tag_vocabulary(tags, min_count=1)[-1] == "bird"
    with pytest.raises(ValueError, match="lower min_count"):
        T.tag_vocabulary(tags, min_count=9)


def test_multi_hot_marks_known_tags_only():
    out = T.multi_hot([["b", "zzz"], [], ["a", "b"]], ["a", "b"])
    assert out.dtype == torch.bool
    assert out.tolist() == [[False, True], [False, False], [True, True]]


# ------------------------------------------------------------------ views

def test_views_are_seeded_images_in_unit_range():
    stamps = T.prepare_stamps([_rgba((255, 0, 0, 255)), _rgba((0, 0, 255, 255), (10, 50))], size=32)
    assert max(stamps[1].image.size) <= 32
    views = T.render_views(stamps, seed=0, size=32, copies=3)
    assert views.shape == (6, 3, 32, 32) and views.dtype == torch.float32
    assert 0.0 <= views.min() and views.max() <= 1.0
    assert torch.equal(views, T.render_views(stamps, seed=0, size=32, copies=3))
    assert not torch.equal(views, T.render_views(stamps, seed=1, size=32, copies=3))
    red = (views[:, 0] > 0.95) & (views[:, 1] < 0.05) & (views[:, 2] < 0.05)
    assert red[0::2].flatten(1).any(1).all()  # the red stamp is pasted, its colour untouched


def test_stamp_views_gives_a_fresh_view_at_every_access():
    stamps = T.prepare_stamps([_rgba((0, 200, 0, 255))] * 2, size=32)
    tags = torch.tensor([[True, False], [False, True]])
    data = T.StampViews(stamps, tags, size=32, copies=3)
    assert len(data) == 6
    first, tag = data[3]
    assert first.shape == (3, 32, 32) and tag.tolist() == [False, True]  # item 3 is stamp 1
    assert not torch.equal(first, data[3][0])
    with pytest.raises(ValueError, match="rows of tags"):
        T.StampViews(stamps, tags[:1])


def _epoch(loader) -> torch.Tensor:
    return torch.cat([images for images, _ in loader])


def test_stamp_views_follow_torchs_rng_so_a_resumed_run_sees_the_same_views():
    stamps = T.prepare_stamps([_rgba((0, 200, 0, 255)), _rgba((200, 0, 0, 255))], size=32)
    data = T.StampViews(stamps, torch.eye(2, dtype=torch.bool), size=32, copies=2)
    loader = torch.utils.data.DataLoader(data, batch_size=2)
    torch.manual_seed(5)
    _epoch(loader)
    saved = torch.get_rng_state()                  # what fit's checkpoint stores after epoch 1
    second = _epoch(loader)
    torch.set_rng_state(saved)                     # resume: restore the RNG, run epoch 2 again
    assert torch.equal(_epoch(loader), second)
    torch.manual_seed(5)
    assert not torch.equal(_epoch(loader), second)  # and epochs differ from each other


def test_stamp_views_differ_between_dataloader_workers():
    # A generator stored on the dataset would be copied into every worker: identical "random" views.
    stamps = T.prepare_stamps([_rgba((0, 200, 0, 255))], size=32)
    data = T.StampViews(stamps, torch.ones(1, 1, dtype=torch.bool), size=32, copies=4)
    torch.manual_seed(0)
    views = _epoch(torch.utils.data.DataLoader(data, batch_size=1, num_workers=2))
    assert len({v.numpy().tobytes() for v in views}) == 4


# ------------------------------------------------------------------ models

def test_joint_embedding_gives_unit_vectors_and_tag_sets():
    torch.manual_seed(0)
    model = T.JointEmbedding(num_tags=5, dim=8, width=4)
    images, tags, scale = model(torch.rand(3, 3, 32, 32))
    assert images.shape == (3, 8) and tags.shape == (5, 8) and scale is model.logit_scale
    assert torch.allclose(images.norm(dim=1), torch.ones(3), atol=1e-5)
    one_hot = F.one_hot(torch.tensor([2]), 5).bool()
    assert torch.allclose(model.encode_tags(one_hot), model.tag_vectors()[2:3], atol=1e-6)
    pair = model.encode_tags(torch.tensor([[1, 1, 0, 0, 0]], dtype=torch.bool))
    expected = F.normalize(model.tag_vectors()[0] + model.tag_vectors()[1], dim=0)
    assert torch.allclose(pair[0], expected, atol=1e-6)
    assert math.exp(-model.logit_scale.item()) == pytest.approx(0.07)


def test_devise_trains_only_its_linear_map():
    torch.manual_seed(0)
    encoder = ImageCNN(width=4, out_dim=8)
    labels = torch.randn(6, 12)
    model = T.DeViSE(labels, encoder).train()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"project.weight", "project.bias"}
    assert not model.visual.training  # frozen BatchNorm keeps its running statistics
    assert torch.allclose(model.tag_vectors(), F.normalize(labels, dim=1))
    assert model.visual.blocks[0].weight is not encoder.blocks[0].weight  # a copy, not shared
    images, label_vecs = model(torch.rand(2, 3, 32, 32))
    assert images.shape == (2, 12) and torch.allclose(images.norm(dim=1), torch.ones(2), atol=1e-5)
    tuned = T.DeViSE(labels, encoder, train_encoder=True).train()
    assert tuned.visual.training and tuned.visual.blocks[0].weight.requires_grad


def test_embed_images_averages_views():
    torch.manual_seed(0)
    model = T.JointEmbedding(num_tags=3, dim=8, width=4)
    views = torch.rand(6, 3, 32, 32)  # 2 copies of 3 images
    single = T.embed_images(model, views)
    assert not model.training
    averaged = T.embed_images(model, views, copies=2, batch_size=4)
    assert torch.allclose(averaged, F.normalize(single[:3] + single[3:], dim=1), atol=1e-5)
    with pytest.raises(ValueError, match="copies"):
        T.embed_images(model, views, copies=4)


# ------------------------------------------------------------------ losses

def test_info_nce_is_cross_entropy_with_one_positive_and_skips_empty_rows():
    logits = torch.randn(4, 6)
    target = torch.tensor([0, 5, 2, 2])
    positives = F.one_hot(target, 6).bool()
    assert T.info_nce(logits, positives) == pytest.approx(F.cross_entropy(logits, target).item(), abs=1e-6)
    two = torch.zeros(1, 3, dtype=torch.bool)
    two[0, :2] = True
    logits = torch.tensor([[2.0, 0.0, 1.0]])
    expected = -(logits.log_softmax(1)[0, 0] + logits.log_softmax(1)[0, 1]) / 2
    assert T.info_nce(logits, two) == pytest.approx(expected.item())
    with_empty = torch.cat([positives, torch.zeros(1, 6, dtype=torch.bool)])
    padded = torch.cat([torch.randn(4, 6), torch.randn(1, 6)])
    assert T.info_nce(padded, with_empty) == pytest.approx(T.info_nce(padded[:4], positives).item())


@pytest.mark.parametrize("loss", [T.info_nce, T.hinge_rank_loss])
def test_a_batch_without_any_positive_is_a_clear_error_not_nan(loss):
    with pytest.raises(ValueError, match="no row of this batch has a positive"):
        loss(torch.randn(3, 4), torch.zeros(3, 4, dtype=torch.bool))


def test_encode_tags_follows_the_models_device():
    # A multi-hot built on the CPU meets a model elsewhere (here: meta, as a GPU would).
    model = T.JointEmbedding(num_tags=3, dim=8, width=4).to("meta")
    assert model.encode_tags(torch.tensor([[True, False, True]])).device.type == "meta"


def test_contrastive_loss_matches_clip_with_one_match_per_row():
    gen = torch.Generator().manual_seed(0)
    a = F.normalize(torch.randn(5, 8, generator=gen), dim=1)
    b = F.normalize(torch.randn(5, 8, generator=gen), dim=1)
    scale = torch.tensor(math.log(1 / 0.07))
    logits = scale.exp() * a @ b.T
    labels = torch.arange(5)
    clip = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2  # CLIP's pseudo-code
    eye = torch.eye(5, dtype=torch.bool)
    assert T.contrastive_loss(a @ b.T, eye, scale) == pytest.approx(clip.item(), abs=1e-5)
    capped = T.contrastive_loss(a @ b.T, eye, torch.tensor(10.0))  # exp(10) is capped at 100
    assert capped == pytest.approx(T.contrastive_loss(a @ b.T, eye, torch.tensor(math.log(100.0))).item(), abs=1e-5)


def test_hinge_rank_loss_by_hand():
    scores = torch.tensor([[0.9, 0.5, 0.85], [0.1, 0.2, 0.3]])
    positives = torch.tensor([[True, False, False], [False, False, False]])
    # row 0: positive 0.9; negatives 0.5 -> max(0, 0.2 - 0.4) = 0, 0.85 -> 0.2 - 0.05 = 0.15; row 1 skipped
    assert T.hinge_rank_loss(scores, positives, margin=0.2) == pytest.approx(0.15)
    assert T.hinge_rank_loss(scores, positives, margin=0.01) == 0.0
    two = torch.tensor([[True, False, True]])
    # positives 0.9 and 0.85 against the negative 0.5: (0 + 0) / 2 at margin 0.2; at 0.4: (0 + 0.05) / 2
    assert T.hinge_rank_loss(scores[:1], two, margin=0.4) == pytest.approx(0.025)


def test_hinge_rank_loss_equals_the_sum_over_every_positive_negative_pair():
    # The loss gathers each row's positives; compare with the plain double loop over (p, n).
    gen = torch.Generator().manual_seed(1)
    scores = torch.randn(6, 9, generator=gen)
    positives = torch.rand(6, 9, generator=gen) < 0.3
    positives[0] = False  # a row without positives is left out
    positives[1, :3] = True
    rows = []
    for s, pos in zip(scores, positives):
        if pos.any():
            total = sum(max(0.0, 0.1 - s[p].item() + s[n].item())
                        for p in pos.nonzero().flatten() for n in (~pos).nonzero().flatten())
            rows.append(total / pos.sum().item())
    assert T.hinge_rank_loss(scores, positives, margin=0.1) == pytest.approx(sum(rows) / len(rows), rel=1e-6)


def test_symmetric_hinge_is_the_mean_of_both_directions():
    gen = torch.Generator().manual_seed(2)
    scores = torch.rand(4, 4, generator=gen)
    pos = torch.eye(4, dtype=torch.bool)
    both = (T.hinge_rank_loss(scores, pos, 0.3) + T.hinge_rank_loss(scores.T, pos, 0.3)) / 2
    assert T.symmetric_hinge_loss(scores, pos, 0.3) == pytest.approx(both.item())


# ------------------------------------------------------------------ training steps

def _colour_batch(n=32, size=16):
    """Red images carry tag 0 ("red"), blue ones tag 1; every image also carries tag 2 ("thing")."""
    gen = torch.Generator().manual_seed(0)
    is_red = torch.arange(n) % 2 == 0
    images = torch.rand(n, 3, size, size, generator=gen) * 0.3
    images[is_red, 0] += 0.7
    images[~is_red, 2] += 0.7
    tags = torch.stack([is_red, ~is_red, torch.ones(n, dtype=torch.bool)], dim=1)
    return images, tags


@pytest.mark.parametrize("step", [T.clip_step, T.hinge_step])
def test_joint_steps_learn_a_colour_tag(step):
    torch.manual_seed(0)
    images, tags = _colour_batch()
    model = T.JointEmbedding(num_tags=3, dim=8, width=4)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    first = None
    for _ in range(40):
        model.train()
        out = step(model, (images, tags))
        loss = out[0] if isinstance(out, tuple) else out
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first
    scores = T.embed_images(model, images) @ model.tag_vectors().detach().T
    colour_only = tags[:, :2]
    assert recall_at_k(scores[:, :2], colour_only, 1) == 1.0          # image -> its colour tag
    assert recall_at_k(scores[:, :2].T, colour_only.T, 5) == 1.0      # colour tag -> its images


def test_clip_step_logs_the_temperature_and_trains_it():
    torch.manual_seed(0)
    model = T.JointEmbedding(num_tags=3, dim=8, width=4)
    loss, logs = T.clip_step(model, _colour_batch())
    assert logs["temperature"] == pytest.approx(0.07, rel=1e-4)
    loss.backward()
    assert model.logit_scale.grad is not None and model.logit_scale.grad != 0


def test_devise_step_moves_only_the_map():
    torch.manual_seed(0)
    images, tags = _colour_batch()
    model = T.DeViSE(torch.randn(3, 12), ImageCNN(width=4, out_dim=8))
    before = model.visual.blocks[0].weight.clone()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    losses = []
    for _ in range(20):
        model.train()
        loss = T.devise_step(model, (images, tags), margin=0.1)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < losses[0]
    assert torch.equal(model.visual.blocks[0].weight, before)
    assert np.isfinite(losses).all()


# ------------------------------------------------------------------ notebook 01's splits

@pytest.fixture(scope="module")
def stamps(tuxpaint):
    from mmcourse.data.tuxpaint import load_stamps
    return load_stamps()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_notebooks_splits_share_no_stamp_and_no_content(stamps, seed):
    from mmcourse.data.splits import assert_disjoint
    val_labels, test_labels = T.zero_shot_labels(stamps, seed)
    assert len(val_labels) == 10 and len(test_labels) == 20 and not set(val_labels) & set(test_labels)
    assert T.zero_shot_labels(stamps, seed) == (val_labels, test_labels)  # a fixed rule, not a choice
    parts = T.tagging_splits(stamps, seed, held_labels=val_labels + test_labels)
    assert list(parts) == ["train", "validation", "test", "heldout"]
    assert_disjoint(parts, ["id", *T.LINK_COLUMNS])
    assert sum(map(len, parts.values())) == len(stamps)
    held = set(val_labels + test_labels)
    for name in ["train", "validation", "test"]:
        assert not any(held & set(tags) for tags in parts[name]["tags"]), f"a held-out label in {name}"
    for label in held:  # every held-out label has images to be named
        assert sum(label in tags for tags in parts["heldout"]["tags"]) >= 2


def test_zero_shot_labels_are_object_names_not_category_words(stamps):
    categories = {w for c in stamps["category"] for w in c.split("/")}
    for seed in range(3):
        val_labels, test_labels = T.zero_shot_labels(stamps, seed)
        assert not categories & set(val_labels + test_labels)
    with pytest.raises(ValueError, match="candidate labels"):
        T.zero_shot_labels(stamps, 0, n_val=500)


def test_held_out_families_leave_the_three_parts(stamps):
    families = T.zero_shot_families(stamps, seed=0)
    assert len(families) == 3 and all(f.count("/") == 1 for f in families)
    parts = T.tagging_splits(stamps, 0, held_families=families)
    for name in ["train", "validation", "test"]:
        assert not {family_of(c) for c in parts[name]["category"]} & set(families)
