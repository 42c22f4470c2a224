"""Notebook 04's helpers: captions, the matching-aware loss, the GAN's shapes, the judge."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from mmcourse.data.splits import assert_disjoint
from mmcourse.translating import text_to_image as T

# ------------------------------------------------------------------ data

def test_captions_and_size_from_pixels():
    assert T.captions("blue", "circle", "small")[:2] == ["a small blue circle", "a blue circle"]
    assert len(set(T.captions("red", "triangle", "large"))) == len(T.TEMPLATES)
    image = Image.new("RGB", (10, 10), (240, 230, 230))
    ImageDraw.Draw(image).rectangle([0, 0, 4, 4], fill=(0, 0, 255))  # 25 of 100 pixels
    assert T.shape_area(image) == pytest.approx(0.25)


def test_to_tensor_and_standardise():
    image = Image.new("RGB", (8, 8), (255, 0, 0))
    x = T.to_tensor([image], 4)
    assert x.shape == (1, 3, 4, 4) and x[0, 0].eq(1).all() and x[0, 1].eq(-1).all()
    reference = torch.tensor([[1.0, 10.0], [3.0, 30.0]])
    out = T.standardise(torch.tensor([[2.0, 20.0], [3.0, 30.0]]), reference)
    assert torch.allclose(out, torch.tensor([[0.0, 0.0], [1 / math.sqrt(2), 1 / math.sqrt(2)]]))


# ------------------------------------------------------------------ losses

def test_matching_aware_loss_terms_on_hand_made_logits():
    zero = torch.zeros(4)
    loss, logs = T.matching_aware_d_loss(zero, zero, zero)
    assert loss.item() == pytest.approx(2 * math.log(2))  # ln 2 + (ln 2 + ln 2) / 2
    assert set(logs) == {"d_real", "d_fake", "d_wrong"}
    # A discriminator that is right about real and fake, but calls the wrong text real:
    real, fake, wrong = torch.full((3,), 10.0), torch.full((3,), -10.0), torch.full((3,), 10.0)
    loss, logs = T.matching_aware_d_loss(real, fake, wrong)
    expected = (F.binary_cross_entropy_with_logits(real, torch.ones(3))
                + (F.binary_cross_entropy_with_logits(fake, torch.zeros(3))
                   + F.binary_cross_entropy_with_logits(wrong, torch.zeros(3))) / 2)
    assert loss.item() == pytest.approx(expected.item()) and loss.item() == pytest.approx(5.0, abs=1e-3)
    assert logs["d_wrong"] == pytest.approx(10.0, abs=1e-3)
    plain, logs = T.matching_aware_d_loss(real, fake, None)
    assert "d_wrong" not in logs and plain.item() < 1e-3  # without the term, the mismatch costs nothing


def test_mode_seeking_ratio_and_wrong_partners():
    a, b = torch.zeros(2, 3, 2, 2), torch.ones(2, 3, 2, 2)
    za, zb = torch.zeros(2, 4), torch.full((2, 4), 2.0)
    assert T.mode_seeking_ratio(a, b, za, zb).item() == pytest.approx(0.5)
    torch.manual_seed(0)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    perm = T.shuffled_other(labels)
    assert sorted(perm.tolist()) == list(range(8)) and (labels[perm] != labels).all()


# ------------------------------------------------------------------ networks

@pytest.mark.parametrize("size", [8, 16, 32])
def test_generator_and_discriminator_shapes(size):
    g, d = T.Generator(10, noise_dim=4, width=4, size=size), T.Discriminator(10, width=4, size=size)
    images = g(torch.randn(3, 4), torch.randn(3, 10))
    assert images.shape == (3, 3, size, size) and images.abs().max() <= 1
    right, wrong = torch.randn(3, 10), torch.randn(3, 10)
    both = d(images, right, wrong)  # one read of the images, scored against two texts
    assert both.shape == (2, 3) and d(images, right).shape == (1, 3)
    d.eval()  # BatchNorm in eval mode: the two-text call equals two one-text calls
    assert torch.allclose(d(images, right, wrong), torch.cat([d(images, right), d(images, wrong)]), atol=1e-6)
    with pytest.raises(ValueError, match="at least one text"):
        d(images)
    with pytest.raises(ValueError, match="power of two"):
        T.Generator(10, size=12)


def test_networks_run_on_the_meta_device():
    g, d, judge = T.Generator(10, noise_dim=4, width=4), T.Discriminator(10, width=4), T.Judge(width=4, depth=2)
    g, d, judge = g.to("meta"), d.to("meta"), judge.to("meta")
    images = g(torch.zeros(2, 4, device="meta"), torch.zeros(2, 10, device="meta"))
    assert images.device.type == "meta" and d(images, torch.zeros(2, 10, device="meta")).device.type == "meta"
    assert all(out.device.type == "meta" for out in judge(images))


def test_train_gan_runs_both_variants_and_is_seeded():
    images, caption_ids = torch.rand(16, 3, 8, 8) * 2 - 1, torch.tensor([[i % 4, (i + 1) % 4] for i in range(16)])
    texts, labels = torch.randn(4, 6), torch.arange(4)

    def run(matching_aware):
        torch.manual_seed(0)
        g, d = T.Generator(6, noise_dim=4, width=4, size=8), T.Discriminator(6, width=4, size=8)
        log = T.train_gan(g, d, images, caption_ids, texts, labels, steps=4, batch_size=8,
                          matching_aware=matching_aware, log_every=2, progress=False)
        return g, log

    for matching_aware in (True, False):
        g, log = run(matching_aware)
        assert [r["step"] for r in log] == [2, 4] and ("d_wrong" in log[0]) == matching_aware
    assert run(True)[1] == run(True)[1]  # same seed, same losses
    assert T.generate(g, texts, seed=3).shape == (4, 3, 8, 8)
    assert torch.equal(T.generate(g, texts, seed=3), T.generate(g, texts, seed=3))
    with pytest.raises(ValueError, match="same N"):
        T.train_gan(g, T.Discriminator(6, width=4, size=8), images, caption_ids[:3], texts, labels, steps=1)


# ------------------------------------------------------------------ the judge

def test_judge_step_asks_for_no_shape_on_blurred_images():
    torch.manual_seed(0)
    judge = T.Judge(width=4, depth=2)
    images = torch.rand(4, 3, 16, 16) * 2 - 1
    blurred = T.blur(images, 2.0)
    assert blurred.shape == images.shape and blurred.std() < images.std()
    color, shape = torch.tensor([0, 1, 2, 3]), torch.tensor([0, 1, 2, 0])
    loss, logs = T.judge_step(judge, (images, color, shape, blurred))
    c, s = judge(torch.cat([images, blurred]))
    expected = (F.cross_entropy(c, torch.cat([color, color])) + F.cross_entropy(s[:4], shape)
                - F.log_softmax(s[4:], 1).mean(1).mean())
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_agreement_and_diversity_by_hand():
    color_probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    shape_probs = torch.tensor([[0.1, 0.9], [0.7, 0.3], [0.2, 0.8]])
    out = T.agreement(color_probs, shape_probs, torch.tensor([0, 1, 1]), torch.tensor([1, 1, 1]))
    assert out == pytest.approx({"color": 2 / 3, "shape": 2 / 3, "both": 1 / 3})
    images = torch.zeros(3, 1, 1, 2)
    images[1, 0, 0, 0], images[2, 0, 0, 1] = 3.0, 4.0  # distances 3, 4, 5
    assert T.mean_pairwise_distance(images) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="two images"):
        T.mean_pairwise_distance(images[:1])


# ------------------------------------------------------------------ splits

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_held_out_pairs_never_reach_training(seed):
    pytest.importorskip("easy_vqa")
    held = [("red", "triangle"), ("blue", "circle")]
    parts = T.make_splits(seed, held)
    for name in ("train", "validation"):
        assert not set(zip(parts[name]["color"], parts[name]["shape"])) & set(held)
    assert set(zip(parts["heldout"]["color"], parts["heldout"]["shape"])) == set(held)
    assert_disjoint({k: parts[k] for k in ("train", "validation", "heldout")}, ["image_id", "image_sha"])
    assert_disjoint({k: parts[k] for k in ("train", "validation", "test")}, ["image_sha"])
    assert set(parts["train"]["size"]) == {"small", "large"}
    with pytest.raises(ValueError, match="never occur"):
        T.make_splits(seed, [("pink", "circle")])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_notebooks_splits_share_no_image(seed):
    from mmcourse.data.splits import assert_disjoint
    heldout = [("red", "triangle"), ("blue", "circle"), ("yellow", "rectangle")]
    parts = T.make_splits(seed, heldout)
    assert_disjoint(parts, ["image_sha"])  # easy-VQA could draw one picture twice; none crosses a split
    assert not {(c, s) for c, s in zip(parts["train"]["color"], parts["train"]["shape"])} & set(heldout)
