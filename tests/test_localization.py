import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import auc, jaccard_score

from mmcourse.referencing import localization as L

SR = 8000


# ---------------------------------------------------------------- metrics on hand-built maps

def square(size=8, y=2, x=2, side=3):
    m = np.zeros((size, size))
    m[y:y + side, x:x + side] = 1
    return m


def test_ciou_hand_values():
    truth = square()                                               # 9 pixels
    assert L.ciou(truth, truth) == pytest.approx(1.0)
    assert L.ciou(np.roll(truth, 1, axis=1), truth) == pytest.approx(6 / 12)   # 6 shared, 3 extra
    assert L.ciou(np.ones((8, 8)), truth) == pytest.approx(9 / 64)          # a constant map selects all
    assert L.ciou(square(y=5, x=5, side=2), truth) == 0.0


def test_ciou_is_iou_for_binary_masks_and_uses_the_threshold():
    rng = np.random.default_rng(0)
    for _ in range(20):
        heat, truth = rng.random((16, 16)), rng.random((16, 16)) > 0.7
        selected = (heat - heat.min()) / (heat.max() - heat.min()) >= 0.5
        assert L.ciou(heat, truth) == pytest.approx(jaccard_score(truth.ravel(), selected.ravel()))
    heat = np.array([[0.0, 0.4], [0.6, 1.0]])
    truth = np.array([[0, 0], [1, 1]])
    assert L.ciou(heat, truth, threshold=0.5) == 1.0 and L.ciou(heat, truth, threshold=0.3) == pytest.approx(2 / 3)


def test_ciou_with_a_consensus_map():
    truth = np.array([[1.0, 0.5], [0.0, 0.0]])                     # two annotators agree on one pixel
    heat = np.array([[1.0, 1.0], [1.0, 0.0]])
    # A = three pixels: sum g over A = 1.5; sum g = 1.5; one pixel of A has g = 0
    assert L.ciou(heat, truth) == pytest.approx(1.5 / (1.5 + 1))


def test_ciou_errors():
    with pytest.raises(ValueError, match="same shape"):
        L.ciou(np.ones((4, 4)), np.ones((8, 8)))
    with pytest.raises(ValueError, match="empty"):
        L.ciou(np.ones((4, 4)), np.zeros((4, 4)))


def test_success_rate_and_auc_against_sklearn():
    cious = np.array([0.1, 0.45, 0.5, 0.8, 1.0])
    assert L.success_rate(cious) == pytest.approx(3 / 5)
    rates = [np.mean(cious >= t) for t in L.AUC_THRESHOLDS]
    assert L.success_auc(cious) == pytest.approx(auc(L.AUC_THRESHOLDS, rates))
    assert L.success_auc(np.ones(3)) == pytest.approx(1.0)
    assert L.success_auc(np.zeros(3)) == pytest.approx(0.05 / 2)    # only threshold 0 counts: one half-step


def test_evaluate_and_bootstrap():
    truth = square(16, 4, 4, 6)
    result = L.evaluate([truth, np.ones((16, 16))], [truth, truth])
    assert result["success"] == 0.5 and result["cious"][0] == 1.0
    low, high = L.bootstrap_interval(np.array([0.0] * 50 + [1.0] * 50), seed=0)
    assert 0.35 < low < 0.5 < high < 0.65


def test_centre_prior_half_maximum_area():
    prior = L.centre_prior(64, area=0.1)
    selected = L.normalize_map(prior) >= 0.5
    assert selected.mean() == pytest.approx(0.1, abs=0.01)
    assert prior[32, 32] == prior.max() and np.allclose(prior, prior.T)


# ---------------------------------------------------------------- model and losses

def tiny(listen=True):
    torch.manual_seed(0)
    return L.SoundLocalizer(SR, dim=8, width=4, depth=2, listen=listen)


def test_context_cnn_keeps_a_quarter_of_the_resolution():
    net = L.ContextCNN(width=4, depth=2, context=2).eval()
    assert net.feature_map(torch.rand(2, 3, 48, 48)).shape == (2, 8, 12, 12) and net.stride == 4
    assert len(net.context) == 6 and net.context[0].dilation == (2, 2)
    assert L.ContextCNN(width=4, depth=3, context=0).feature_map(torch.rand(1, 3, 48, 48)).shape == (1, 16, 6, 6)


def test_oracle_heatmaps_hand_values():
    masks = torch.zeros(1, 4, 4, dtype=torch.bool)
    masks[0, :, :2] = True                                         # the left half
    oracle = L.oracle_heatmaps(masks, (1, 2))                      # grid cells [1, 0], upsampled
    assert torch.allclose(oracle[0], torch.tensor([1.0, 0.75, 0.25, 0.0]).expand(4, 4))
    assert L.ciou(oracle[0].numpy(), masks[0].numpy()) == 1.0
    full = torch.rand(3, 8, 8) > 0.5                               # a grid as fine as the image: the mask itself
    assert torch.equal(L.oracle_heatmaps(full, (8, 8)), full.float())


def test_heatmap_attention_and_pair_scores():
    visual = torch.nn.functional.normalize(torch.randn(3, 8, 4, 4), dim=1)
    audio = torch.nn.functional.normalize(torch.randn(3, 8), dim=1)
    scores = L.heatmap(visual, audio, 0.5)
    assert torch.allclose(scores[1, 2, 3], visual[1, :, 2, 3] @ audio[1] / 0.5)
    alpha, z = L.attend(visual, scores)
    assert torch.allclose(alpha.sum((1, 2)), torch.ones(3))
    assert torch.allclose(z[0], (visual[0] * alpha[0]).sum((1, 2)))
    pairs = L.pair_scores(visual, audio, 0.5)
    own = torch.nn.functional.normalize(z, dim=-1)
    assert torch.allclose(pairs.diagonal(), (own * audio).sum(-1), atol=1e-6)
    _, z_02 = L.attend(visual[:1], L.heatmap(visual[:1], audio[2:], 0.5))    # image 0 attended by sound 2
    assert torch.allclose(pairs[0, 2], (torch.nn.functional.normalize(z_02, dim=-1) * audio[2]).sum(), atol=1e-6)


def test_supervised_loss_is_zero_when_attention_matches_the_mask():
    target = torch.zeros(2, 4, 4)
    target[:, 1, 1:3] = 1.0
    perfect = torch.where(target > 0, 0.0, -1e4)                   # softmax puts 1/2 on each masked cell
    assert L.supervised_loss(perfect, target).item() == pytest.approx(0.0, abs=1e-6)
    assert L.supervised_loss(torch.zeros(2, 4, 4), target).item() == pytest.approx(np.log(8), rel=1e-5)


def test_mask_to_grid():
    masks = torch.zeros(1, 8, 8, dtype=torch.bool)
    masks[0, :4, :2] = True
    grid = L.mask_to_grid(masks, (2, 2))
    assert grid[0].tolist() == [[0.5, 0.0], [0.0, 0.0]]


@pytest.mark.parametrize("mode", ["unsupervised", "supervised", "semi"])
def test_steps_run_and_backpropagate(mode):
    model = tiny()
    images, waves = torch.rand(4, 3, 16, 16), torch.randn(4, SR // 2)
    target = L.mask_to_grid(torch.rand(4, 16, 16) > 0.7, (4, 4))
    labelled = torch.tensor([True, False, True, False])
    loss, logs = L.localization_step(mode)(model, (images, waves, target, labelled))
    loss.backward()
    assert torch.isfinite(loss) and model.visual.cnn.blocks[0].weight.grad is not None and model.visual.context[0].weight.grad is not None
    assert ("unsup" in logs) == (mode != "supervised") and ("sup" in logs) == (mode != "unsupervised")
    with pytest.raises(ValueError, match="mode"):
        L.localization_step("self-supervised")


def test_visual_only_ignores_the_sound_and_frozen_visual_stays_frozen():
    model = tiny(listen=False)
    images = torch.rand(2, 3, 16, 16)
    model.eval()
    _, a1 = model(images, torch.randn(2, 4000))
    _, a2 = model(images, torch.zeros(2, 4000))
    assert torch.equal(a1, a2)
    pretrained = tiny().visual
    frozen = L.SoundLocalizer(SR, dim=8, width=4, depth=2, visual=pretrained).train()
    assert not frozen.visual.training and not any(p.requires_grad for p in frozen.visual.parameters())


def test_predict_heatmaps_shape_and_meta_device():
    model = tiny()
    maps = L.predict_heatmaps(model, torch.randint(0, 256, (5, 3, 16, 16), dtype=torch.uint8),
                              torch.randn(5, 4000), size=16, batch_size=2)
    assert maps.shape == (5, 16, 16) and torch.allclose(maps.sum((1, 2)) / 16, torch.ones(5), atol=0.2)
    assert L.upsample(torch.ones(2, 3, 3), 12).shape == (2, 12, 12)
    meta = tiny().to("meta")
    visual, audio = meta(torch.rand(2, 3, 16, 16, device="meta"), torch.randn(2, 4000, device="meta"))
    assert visual.device.type == "meta" and audio.device.type == "meta"
    loss = L.unsupervised_loss(visual, audio, 0.1)
    assert loss.device.type == "meta"


def test_mismatched_batch_is_refused():
    with pytest.raises(ValueError, match="one sound per scene"):
        tiny()(torch.rand(2, 3, 16, 16), torch.randn(3, 4000))


# ---------------------------------------------------------------- pointing, chance and paired leads

def test_pointing_hand_values():
    masks = np.zeros((3, 4, 4), dtype=bool)
    masks[:, :2, :2] = True                                        # the object: top-left quarter
    heat = np.zeros((3, 4, 4))
    heat[0, 1, 1] = 1.0                                            # peak inside
    heat[1, 3, 3] = 1.0                                            # peak outside
    heat[2] = 0.5                                                  # flat: the first pixel (0, 0), inside
    assert L.pointing_hits(heat, masks).tolist() == [True, False, True]
    assert L.pointing_accuracy(heat, masks) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="same shape"):
        L.pointing_hits(heat, masks[:, :2])


def test_random_object_odds_counts_visible_objects():
    two = np.zeros((2, 4, 4), dtype=bool)
    two[0, 0, 0] = two[1, 3, 3] = True
    three_one_hidden = np.zeros((3, 4, 4), dtype=bool)
    three_one_hidden[0, 0] = three_one_hidden[1, 1] = True         # the third object is fully covered
    four = np.ones((4, 4, 4), dtype=bool)
    assert L.random_object_odds([two, three_one_hidden, four]).tolist() == [0.5, 0.5, 0.25]


def test_kind_overlap_hand_values():
    # scene 0 sounds an animal and also shows a voice; scene 1 sounds a voice; scene 2 an animal alone
    sounders = ["animal", "voice", "animal"]
    scenes = [{"animal", "voice"}, {"voice", "object"}, {"animal"}]
    # pairs (i, j != i): animal in 1? no, in 2? yes; voice in 0? yes, in 2? no; animal in 0? yes, in 1? no
    assert L.kind_overlap(sounders, scenes) == pytest.approx(3 / 6)
    # a sounder of no kind (scenes built with other_kinds=False) is held by no other scene
    assert L.kind_overlap(["animal", None, "animal"], [{"animal"}, {"voice"}, {"animal"}]) == pytest.approx(2 / 6)
    with pytest.raises(ValueError, match="one sounder kind per scene"):
        L.kind_overlap(["animal"], [{"animal"}])


def test_paired_bootstrap_is_tighter_than_the_scene_spread():
    rng = np.random.default_rng(0)
    shared = rng.random(400) < 0.5                                 # hard and easy scenes, shared by both
    a, b = shared | (rng.random(400) < 0.1), shared.astype(float)  # a = b plus a few extra hits
    low, high = L.paired_bootstrap_interval(a, b, seed=0)
    lead = a.mean() - b.mean()
    assert 0 < low < lead < high and high - low < 0.06
    assert L.paired_bootstrap_interval(b, b) == (0.0, 0.0)
    with pytest.raises(ValueError, match="1-D"):
        L.paired_bootstrap_interval(a, b[:10])


def test_supervised_step_uses_only_the_labelled_scenes():
    model = tiny()
    images, waves = torch.rand(4, 3, 16, 16), torch.randn(4, SR // 2)
    target = L.mask_to_grid(torch.rand(4, 16, 16) > 0.7, (4, 4))
    some = torch.tensor([True, False, True, False])
    step = L.localization_step("supervised")
    model.train()
    torch.manual_seed(0)
    loss, _ = step(model, (images, waves, target, some))
    alone, _ = step(tiny(), (images[some], waves[some], target[some], some[some]))
    assert torch.allclose(loss, alone)                             # the unlabelled scenes change nothing
    other = images.clone()
    other[~some] = 0.0                                             # not even through BatchNorm
    assert torch.allclose(step(tiny(), (other, waves, target, some))[0], loss)
    none, logs = step(model, (images, waves, target, torch.zeros(4, dtype=torch.bool)))
    assert none.item() == 0.0 and none.requires_grad and logs == {}


def test_frozen_encoder_heads_start_from_the_encoders_output_layers():
    torch.manual_seed(0)
    visual_out, audio_out = torch.nn.Linear(6, 4), torch.nn.Linear(5, 4)
    heads = L.FrozenEncoderHeads(visual_out, audio_out, temperature=0.2)
    features, sounds = torch.randn(3, 6, 5, 5), torch.randn(3, 5)
    visual, audio = heads(features, sounds)
    assert visual.shape == (3, 4, 5, 5) and audio.shape == (3, 4)
    logits = visual_out(features.permute(0, 2, 3, 1))                    # the output layer at every cell
    assert torch.allclose(visual.permute(0, 2, 3, 1), F.normalize(logits, dim=-1), atol=1e-6)
    assert torch.allclose(audio, F.normalize(audio_out(sounds), dim=-1), atol=1e-6)
    assert heads.temperature.item() == pytest.approx(0.2)
    heads.visual_head.weight.data.zero_()                                # a copy: the encoder's layer is untouched
    assert visual_out.weight.abs().sum() > 0
    loss, _ = L.localization_step("unsupervised")(heads, (features, sounds, torch.rand(3, 5, 5), torch.ones(3, dtype=bool)))
    loss.backward()
    assert heads.log_temperature.grad is not None and heads.audio_head.weight.grad is not None
    blind = L.FrozenEncoderHeads(visual_out, audio_out, listen=False)
    _, query = blind(features, sounds)
    assert torch.allclose(query, query[:1].expand(3, -1))                # the same vector whatever the sound
    with pytest.raises(ValueError, match="one space"):
        L.FrozenEncoderHeads(visual_out, torch.nn.Linear(5, 3))


def test_in_batches_concatenates_a_frozen_encoder_on_the_cpu():
    net = torch.nn.Linear(3, 2)
    x = torch.randn(7, 3)
    assert torch.allclose(L.in_batches(net, x, "cpu", batch_size=3), net(x).detach())
    assert torch.equal(L.in_batches(lambda t: t * 2, x, "cpu", batch_size=2), x * 2)


def test_frozen_encoder_heads_stay_on_meta_device():
    heads = L.FrozenEncoderHeads(torch.nn.Linear(6, 4), torch.nn.Linear(5, 4)).to("meta")
    visual, audio = heads(torch.randn(2, 6, 3, 3, device="meta"), torch.randn(2, 5, device="meta"))
    assert visual.device.type == audio.device.type == heads.temperature.device.type == "meta"
    assert L.unsupervised_loss(visual, audio, heads.temperature).device.type == "meta"
