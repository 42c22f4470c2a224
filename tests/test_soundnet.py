from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmcourse.matching import soundnet as SN


def test_kl_distillation_matches_torch_kl_div():
    torch.manual_seed(0)
    logits = torch.randn(6, 9, requires_grad=True)
    probs = torch.softmax(3 * torch.randn(6, 9), -1)
    probs[0] = F.one_hot(torch.tensor(4), 9).float()             # zeros in the target: 0 log 0 = 0
    ours = SN.kl_distillation(logits, probs)
    ref = F.kl_div(logits.log_softmax(-1), probs, reduction="batchmean")
    assert torch.allclose(ours, ref, atol=1e-6)
    (g_ours,) = torch.autograd.grad(ours, logits)
    logits2 = logits.detach().requires_grad_()
    (g_ref,) = torch.autograd.grad(F.kl_div(logits2.log_softmax(-1), probs, reduction="batchmean"), logits2)
    assert torch.allclose(g_ours, g_ref, atol=1e-6)


def test_kl_distillation_hand_value_and_minimum():
    p = torch.tensor([[0.5, 0.5]])
    q_logits = torch.log(torch.tensor([[0.25, 0.75]]))
    expected = 0.5 * np.log(0.5 / 0.25) + 0.5 * np.log(0.5 / 0.75)     # 0.1438
    assert SN.kl_distillation(q_logits, p).item() == pytest.approx(expected, abs=1e-6)
    assert SN.kl_distillation(torch.log(p), p).item() == pytest.approx(0.0, abs=1e-7)


def test_kl_distillation_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match=r"\[B, K\]"):
        SN.kl_distillation(torch.zeros(2, 3), torch.full((2, 4), 0.25))


def test_top1_agreement():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 5.0]])
    probs = torch.tensor([[0.6, 0.3, 0.1], [0.5, 0.4, 0.1], [0.1, 0.1, 0.8]])
    assert SN.top1_agreement(logits, probs) == pytest.approx(2 / 3)


def test_labels_and_classes():
    assert SN.label_index(["b", "x", "a"], ["a", "b"]).tolist() == [1, -1, 0]
    objects, categories = SN.teacher_classes(["f1"] * 5 + ["f2"] * 4, ["c"] * 8 + ["d"], min_count=5)
    assert objects == ["f1"] and categories == ["c", "d"]


def test_teacher_step_ignores_unknown_family():
    torch.manual_seed(0)
    teacher = SN.Teacher(3, 2, width=4, depth=2)
    images = torch.rand(4, 3, 16, 16)
    labels = torch.tensor([[0, 1], [-1, 0], [2, 1], [-1, 1]])
    loss, logs = SN.teacher_step(teacher, (images, labels))
    obj, cat = teacher(images)
    expected = F.cross_entropy(obj[[0, 2]], labels[[0, 2], 0]) + F.cross_entropy(cat, labels[:, 1])
    assert torch.allclose(loss, expected) and set(logs) == {"acc_obj", "acc_cat"}


def test_soft_targets_are_distributions_for_uint8_and_float():
    teacher = SN.Teacher(5, 3, width=4, depth=2)
    images = torch.randint(0, 256, (7, 3, 16, 16), dtype=torch.uint8)
    p_obj, p_cat = SN.soft_targets(teacher, images, batch_size=3)
    assert p_obj.shape == (7, 5) and p_cat.shape == (7, 3)
    assert torch.allclose(p_cat.sum(-1), torch.ones(7))
    again, _ = SN.soft_targets(teacher, images.float() / 255)
    assert torch.allclose(p_obj, again, atol=1e-6)


def test_student_shapes_and_distill_step():
    torch.manual_seed(0)
    student = SN.Student(5, 3, width=4)
    wave = torch.randn(4, 4000)
    obj, cat = student(wave)
    assert obj.shape == (4, 5) and cat.shape == (4, 3)
    p_obj, p_cat = torch.softmax(torch.randn(4, 5), -1), torch.softmax(torch.randn(4, 3), -1)
    loss, logs = SN.distill_step(student, (wave, p_obj, p_cat))
    assert loss.item() == pytest.approx((SN.kl_distillation(obj, p_obj) + SN.kl_distillation(cat, p_cat)).item(),
                                        rel=1e-5)
    loss.backward()
    assert student.encoder.layers[0][0].weight.grad is not None and set(logs) == {"agree_obj", "agree_cat"}


def test_models_and_loss_stay_on_meta_device():
    student = SN.Student(5, 3, width=4).to("meta")
    obj, cat = student(torch.randn(2, 4000, device="meta"))
    assert obj.device.type == "meta" and cat.device.type == "meta"
    teacher = SN.Teacher(5, 3, width=4, depth=2).to("meta")
    assert teacher(torch.randn(2, 3, 16, 16, device="meta"))[0].device.type == "meta"
    loss = SN.kl_distillation(torch.randn(2, 5, device="meta"), torch.rand(2, 5, device="meta"))
    assert loss.device.type == "meta"
    assert SN.SoundClassifier(3, width=4).to("meta")(torch.randn(2, 4000, device="meta")).device.type == "meta"


def test_transfer_features_probe_and_most_exciting():
    torch.manual_seed(0)
    encoder = SN.Student(5, 3, width=4).encoder
    waves = torch.randn(12, 4000) * torch.linspace(0.1, 2.0, 12)[:, None]
    feats = SN.transfer_features(encoder, waves, layer=2, batch_size=5)
    assert feats.shape == (12, encoder.channels[2])
    best = SN.most_exciting(encoder, waves, units=[0, 3], layer=2, k=2)
    with torch.no_grad():
        peaks = encoder.feature_maps(waves)[2].amax(-1)
    assert best.shape == (2, 2) and best[1, 0].item() == peaks[:, 3].argmax().item()
    # a probe separates two well-separated clusters
    x = np.concatenate([np.random.default_rng(0).normal(0, 1, (20, 4)), np.random.default_rng(1).normal(5, 1, (20, 4))])
    y = np.array([0] * 20 + [1] * 20)
    assert (SN.linear_probe(x, y).predict(x) == y).mean() == 1.0


def test_predict_concatenates_tuple_outputs():
    student = SN.Student(5, 3, width=4)
    obj, cat = SN.predict(student, torch.randn(7, 4000), batch_size=3)
    assert obj.shape == (7, 5) and cat.shape == (7, 3)
    assert SN.predict(SN.SoundClassifier(3, width=4), torch.randn(7, 4000), batch_size=3).shape == (7, 3)


def test_few_shot_episodes_label_shots_groups_and_score_the_rest():
    from datasets import Dataset

    from mmcourse.data.splits import assert_disjoint, linked_groups

    # a0 and a1 share a recording: one group. n0 has no label: neither labelled nor scored.
    pool = Dataset.from_dict({"id": ["a0", "a1", "a2", "a3", "v0", "v1", "n0"],
                              "kind": ["animal", "animal", "animal", "animal", "voice", "voice", None],
                              "sound_sha": ["s", "s", "t", "u", "v", "w", "x"]})
    component = linked_groups(pool, "id", ["sound_sha"])
    groups = [component[i] for i in pool["id"]]
    episodes = SN.few_shot_episodes(pool["kind"], groups, shots=1, n_episodes=20, seed=0)
    assert len(episodes) == 20
    seen = set()
    for labelled, scored in episodes:
        assert_disjoint({"labelled": pool.select(labelled), "scored": pool.select(scored)}, ["id", "sound_sha"])
        kinds = [pool["kind"][i] for i in labelled]
        assert sorted(set(kinds)) == ["animal", "voice"] and kinds.count("voice") == 1   # one group per kind
        assert kinds.count("animal") in (1, 2)                       # the group {a0, a1} has two rows
        assert sorted([*labelled, *scored]) == list(range(6))        # every labelled row on exactly one side
        seen.add(tuple(labelled))
    assert len(seen) > 3                                             # the draws differ between episodes
    again = SN.few_shot_episodes(pool["kind"], groups, shots=1, n_episodes=20, seed=0)
    assert all((a[0] == b[0]).all() and (a[1] == b[1]).all() for a, b in zip(episodes, again))


def test_few_shot_episodes_refuses_bad_pools():
    with pytest.raises(ValueError, match="too few"):
        SN.few_shot_episodes(["a", "a", "b", "b"], [0, 1, 2, 3], shots=2, n_episodes=1)
    with pytest.raises(ValueError, match="two labels"):
        SN.few_shot_episodes(["a", "b", "b"], [0, 0, 1], shots=1, n_episodes=1)
    with pytest.raises(ValueError, match="one group per row"):
        SN.few_shot_episodes(["a", "b"], [0], shots=1, n_episodes=1)


# ---------------------------------------------------------------- AV digits

def test_digit_teacher_shapes_batch_and_softened_probabilities():
    torch.manual_seed(0)
    teacher = SN.DigitTeacher(width=4, hidden=8)
    images = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    x = SN.digit_batch(images)
    assert x.shape == (5, 1, 28, 28) and x.max() <= 1.0 and torch.equal(x, SN.digit_batch(images.numpy()))
    assert teacher(x).shape == (5, 10)
    sharp, soft = SN.teacher_probs(teacher, images, 0.5, batch_size=2), SN.teacher_probs(teacher, images, 4.0)
    assert torch.allclose(soft.sum(-1), torch.ones(5)) and torch.equal(sharp.argmax(1), soft.argmax(1))
    entropy = lambda p: -(p * p.log()).sum(-1)
    assert (entropy(soft) > entropy(sharp)).all()
    assert torch.allclose(SN.teacher_probs(teacher, images), teacher(x).softmax(-1), atol=1e-6)


def test_av_digit_models_stay_on_meta_device():
    teacher = SN.DigitTeacher(width=4, hidden=8).to("meta")
    assert teacher(torch.randn(2, 1, 28, 28, device="meta")).device.type == "meta"
    assert SN.digit_batch(torch.zeros(2, 28, 28, dtype=torch.uint8, device="meta")).device.type == "meta"
    student = SN.SoundClassifier(10, width=4).to("meta")
    loss = SN.kl_distillation(student(torch.randn(2, 4000, device="meta")), torch.rand(2, 10, device="meta"))
    assert loss.device.type == "meta"


def test_spoken_pairs_pair_each_word_with_a_picture_of_its_digit_only():
    words = [np.full(300, d + 1, dtype=np.float32) for d in (0, 1, 2, 1)]
    picture_digits = [2, 0, 1, 1, 0, 2, 2]
    probs = F.one_hot(torch.tensor(picture_digits), 3).float() * 0.9 + 0.1 / 3   # picture i "looks like" its digit
    pairs = SN.SpokenPairs(words, [0, 1, 2, 1], probs, picture_digits, length=1000)
    torch.manual_seed(0)
    for _ in range(20):
        for i, digit in enumerate([0, 1, 2, 1]):
            wave, target = pairs[i]
            assert wave.shape == (1000,) and set(wave.unique().tolist()) == {0.0, digit + 1.0}
            assert target.argmax().item() == digit
    with pytest.raises(ValueError, match="no handwritten picture of digit"):
        SN.SpokenPairs(words, [0, 1, 3, 1], probs, picture_digits, length=1000)
    with pytest.raises(ValueError, match="one digit each"):
        SN.SpokenPairs(words, [0, 1], probs, picture_digits, length=1000)


def test_shifted_words_move_the_word_and_keep_its_label():
    words = [np.ones(100, dtype=np.float32), 2 * np.ones(1500, dtype=np.float32)]
    data = SN.ShiftedWords(words, [3, 5], length=1000)
    torch.manual_seed(0)
    starts = set()
    for _ in range(10):
        wave, label = data[0]
        assert label.item() == 3 and wave.sum().item() == 100
        starts.add(int(wave.nonzero()[0]))
        long_wave, long_label = data[1]
        assert long_label.item() == 5 and torch.equal(long_wave, torch.full((1000,), 2.0))
    assert len(starts) > 5
    with pytest.raises(ValueError, match="one label per word"):
        SN.ShiftedWords(words, [3], length=1000)


def test_kd_step_is_kl_to_the_teacher_with_agreement():
    torch.manual_seed(0)
    student = SN.SoundClassifier(10, width=4)
    wave, probs = torch.randn(4, 4000), torch.softmax(torch.randn(4, 10), -1)
    loss, logs = SN.kd_step(student, (wave, probs))
    logits = student(wave)
    assert loss.item() == pytest.approx(SN.kl_distillation(logits, probs).item(), rel=1e-5)
    assert logs["agree"] == SN.top1_agreement(logits, probs)


def test_shots_per_class_draws_that_many_of_every_class():
    labels = np.repeat(np.arange(4), [5, 6, 7, 3])
    episodes = SN.shots_per_class(labels, 3, n_episodes=6, seed=1)
    assert len(episodes) == 6 and len({tuple(e) for e in episodes}) > 1
    for rows in episodes:
        assert np.all(np.diff(rows) > 0) and Counter(labels[rows].tolist()) == {0: 3, 1: 3, 2: 3, 3: 3}
    assert all(np.array_equal(a, b) for a, b in zip(episodes, SN.shots_per_class(labels, 3, 6, seed=1)))
    with pytest.raises(ValueError, match="fewer than shots=4"):
        SN.shots_per_class(labels, 4, 2)


def test_units_with_distinct_favourites_skip_a_taken_favourite():
    peaks = torch.tensor([[9.0, 8.0, 0.0, 1.0],     # sound 0 is the favourite of units 0 and 1
                          [0.0, 0.0, 5.0, 1.1],
                          [0.0, 0.1, 0.0, 1.2]])
    # spread: unit 0 > unit 1 > unit 2 > unit 3; unit 1 shares unit 0's favourite
    assert SN.units_with_distinct_favourites(peaks, 2) == [0, 2]
    assert SN.units_with_distinct_favourites(peaks, 5) == [0, 2, 3]


def test_digit_teacher_slides_over_a_larger_picture():
    torch.manual_seed(0)
    teacher = SN.DigitTeacher(width=4, hidden=8).eval()
    digit = torch.rand(3, 1, 28, 28)
    hidden = teacher.hidden_map(digit)                                      # [3, 8, 7, 7]
    assert hidden.shape == (3, 8, 7, 7)
    assert torch.allclose(hidden[:, :, 3, 3], F.relu(teacher.hidden(teacher.features(digit).flatten(1))), atol=1e-5)
    # On a scene the window of cell (i, j) starts at pixel (4i - 12, 4j - 12); moved by whole cells,
    # the digit's hidden features move with it (on a blank background, not a zero-padded border).
    scenes = torch.zeros(2, 1, 96, 96)
    scenes[0, :, 40:68, 20:48] = digit[0]
    scenes[1, :, 20:48, 60:88] = digit[0]
    maps = teacher.hidden_map(scenes)
    assert maps.shape == (2, 8, 24, 24)
    assert torch.allclose(maps[0, :, 13, 8], maps[1, :, 8, 18], atol=1e-5)


def test_digit_encoders_train_once_then_resume_from_the_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MMCOURSE_CACHE", str(tmp_path))
    rng = np.random.default_rng(0)
    pictures = {name: (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), np.arange(n) % 10)
                for name, n in (("train", 70), ("validation", 20))}
    teacher, history = SN.train_digit_teacher(pictures, seed=0, epochs=1, device="cpu")
    again, history_again = SN.train_digit_teacher(pictures, seed=0, epochs=1, device="cpu")
    assert "resumed from" in capsys.readouterr().out and history_again.records == history.records
    assert all(torch.equal(a, b) for a, b in zip(teacher.state_dict().values(), again.state_dict().values()))
    assert not any(p.requires_grad for p in again.parameters())
    pictures["train"][0][0, 0, 0] ^= 1                                     # other data: another checkpoint
    SN.train_digit_teacher(pictures, seed=0, epochs=1, device="cpu")
    assert "resumed from" not in capsys.readouterr().out
    assert len(list((tmp_path / "models").glob("av-digit-teacher-*.pt"))) == 2
