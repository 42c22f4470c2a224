"""Image captioning: Show and Tell, then Show, Attend and Tell (notebook 03).

Both decoders read the feature map of one frozen CNN (the papers use an ImageNet-trained CNN;
we train ours to name the things in a scene, then freeze it). The map [B, C, h, w] is read as
L = h * w *annotation vectors* a_i [B, L, C].

* `ShowAndTell` (Vinyals et al., 2015): the mean annotation, projected, is the LSTM's first
  input; then the words follow.
* `ShowAttendTell` (Xu et al., 2015): the LSTM state starts from the mean annotation; at every
  step an MLP scores each location against the state (additive attention), the softmax of
  the scores weights the annotations into a context z, a gating scalar scales z, and the
  doubly stochastic penalty asks every location to be looked at about once over the caption.

Both implement `init_state(annotations)` and `step(tokens, state, annotations) -> (logits,
state, attention or None)`, which is all that `greedy_decode` and `beam_search` need.

The evaluation's helpers live here too: corpus BLEU counted by hand (`bleu_statistics`), the
image-blind baselines (`blind_caption`, `best_fixed_caption`, `noun_precision_chance`,
`best_constant_noun`), the tagger's scores beside the all-negative predictor's (`tag_scores`), and
spreads that resample the stamp pictures the scenes are made of (`cluster_bootstrap_bleu`,
`noun_precision_bootstrap`), since scenes that share a stamp are not independent tests.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from mmcourse.encoders import ImageCNN
from mmcourse.runtime import item_rng
from mmcourse.text import Vocab

# ------------------------------------------------------------------ the encoder


class SceneTagger(nn.Module):
    """The shared `ImageCNN` with a multi-label head: which words (nouns, colours) are in the scene.

    Trained first, then frozen: its feature map is what both decoders look at. With
    pool="max" a tag is scored where it is strongest, so each location has to recognise
    things by itself (good for attention); "mean" averages the whole map.
    """

    def __init__(self, n_tags: int, width: int = 16, depth: int = 3, pool: str = "max"):
        super().__init__()
        if pool not in ("mean", "max"):
            raise ValueError(f"pool must be 'mean' or 'max', got {pool!r}")
        self.cnn, self.pool = ImageCNN(width, depth), pool
        self.head = nn.Linear(self.cnn.channels, n_tags)

    def forward(self, images: Tensor) -> Tensor:  # [B, 3, H, W] -> tag logits [B, T]
        scores = self.head(self.cnn.feature_map(images).flatten(2).transpose(1, 2))   # [B, h * w, T]
        return scores.amax(dim=1) if self.pool == "max" else scores.mean(dim=1)


def tagger_step(model: nn.Module, batch: dict[str, Tensor],
                pos_weight: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    """Binary cross-entropy over the tags; logs the share of tags predicted right.

    `pos_weight` [T] multiplies each tag's positive term (BCEWithLogits' `pos_weight`): with
    few positives per tag, plain cross-entropy is cheapest near "no tag at all", and weighting
    each positive by (negatives / positives) balances the two kinds of mistake.
    """
    logits = model(batch["image"])
    weight = None if pos_weight is None else pos_weight.to(logits.device)
    loss = F.binary_cross_entropy_with_logits(logits, batch["tags"].float(), pos_weight=weight)
    return loss, {"tag_acc": ((logits > 0) == batch["tags"].bool()).float().mean()}


def balancing_pos_weight(tags: Tensor) -> Tensor:
    """Per tag, negatives / positives in `tags` [N, T] (a tag never seen positive gets 1)."""
    positives = tags.float().sum(dim=0)
    return torch.where(positives > 0, (len(tags) - positives) / positives.clamp(min=1), torch.ones_like(positives))


def tag_scores(scores: Tensor | np.ndarray, tags: Tensor | np.ndarray) -> dict[str, float]:
    """How well tag scores [N, T] (logits: positive means "tagged") name the true tags [N, T].

    "mAP": sklearn's average precision per tag, averaged over the tags with at least one positive
    (a ranking measure: no threshold); "micro F1": F1 over all (image, tag) decisions at logit 0;
    "accuracy": the share of decisions that are right. Constant scores, the all-negative
    predictor, get each tag's positive rate as its average precision, F1 0 and the accuracy of
    saying "no tag" everywhere: `tag_scores(np.full(shape, -1.0), tags)`.
    """
    from sklearn.metrics import average_precision_score, f1_score

    scores, tags = np.asarray(scores, dtype=np.float64), np.asarray(tags).astype(bool)
    if scores.shape != tags.shape:
        raise ValueError(f"scores {scores.shape} and tags {tags.shape} differ in shape")
    present = tags.any(axis=0)
    return {"mAP": float(average_precision_score(tags[:, present], scores[:, present], average="macro")),
            "micro F1": float(f1_score(tags, scores > 0, average="micro", zero_division=0)),
            "accuracy": float(((scores > 0) == tags).mean())}


@torch.no_grad()
def annotations(cnn: ImageCNN, images: Tensor, batch_size: int = 256) -> Tensor:
    """Frozen feature maps as annotation vectors: images [N, 3, H, W] -> [N, L = h * w, C] on the CPU."""
    cnn.eval()
    device = next(cnn.parameters()).device
    out = [cnn.feature_map(chunk.to(device)).flatten(2).transpose(1, 2).cpu() for chunk in images.split(batch_size)]
    return torch.cat(out)


# ------------------------------------------------------------------ captions as tensors


class CaptionPairs(Dataset):
    """(annotations [L, C], one of the image's captions as input and target ids) per image.

    Each access picks one of the image's reference captions at random (from torch's RNG via
    `item_rng`, so a resumed or distributed run sees the same choices).
    """

    def __init__(self, features: Tensor, captions: Sequence[Sequence[str]], vocab: Vocab, max_len: int = 20):
        if len(features) != len(captions):
            raise ValueError(f"{len(features)} images but {len(captions)} caption lists")
        self.features, self.vocab, self.max_len = features, vocab, max_len
        # Padded once here, not per access: an item is then a row lookup (this runs ~100k times).
        self.ids = []                                                           # per image [refs, max_len + 1]
        for refs in captions:
            ids, _ = vocab.encode_batch(refs, max_len + 1, add_bos=True, add_eos=True)
            self.ids.append(F.pad(ids, (0, max_len + 1 - ids.shape[1]), value=vocab.pad_id))

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        seq = self.ids[i][item_rng().integers(len(self.ids[i]))]                # [max_len + 1]
        return {"features": self.features[i], "inputs": seq[:-1], "targets": seq[1:]}

    @staticmethod
    def collate(items: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        """Stack a batch and cut the padding columns after its longest caption (fewer LSTM steps)."""
        batch = {k: torch.stack([item[k] for item in items]) for k in items[0]}
        longest = int((batch["targets"] != Vocab.pad_id).sum(dim=1).max())
        return {**batch, "inputs": batch["inputs"][:, :longest], "targets": batch["targets"][:, :longest]}


# ------------------------------------------------------------------ decoders


class ShowAndTell(nn.Module):
    """CNN vector -> LSTM: the projected mean annotation is the input at step -1, then words."""

    def __init__(self, feature_dim: int, vocab_size: int, embed: int = 64, hidden: int = 128, dropout: float = 0.2):
        super().__init__()
        self.image = nn.Linear(feature_dim, embed)
        self.embedding = nn.Embedding(vocab_size, embed)
        self.lstm = nn.LSTMCell(embed, hidden)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, vocab_size)
        self.hidden = hidden

    def init_state(self, features: Tensor) -> tuple[Tensor, Tensor]:  # [B, L, C] -> (h, c) [B, H] each
        _check_features(features)
        zeros = features.new_zeros(len(features), self.hidden)
        return self.lstm(self.image(features.mean(dim=1)), (zeros, zeros))

    def step(self, tokens: Tensor, state: tuple[Tensor, Tensor], features: Tensor):
        h, c = self.lstm(self.embedding(tokens), state)
        return self.out(self.drop(h)), (h, c), None

    def forward(self, features: Tensor, inputs: Tensor) -> tuple[Tensor, None]:
        return teacher_forced(self, features, inputs)


class ShowAttendTell(nn.Module):
    """LSTM with soft (additive) attention over the annotation vectors, a gating scalar and deep output.

    e_ti = w . tanh(W_a a_i + W_h h_{t-1}),  alpha_t = softmax_i(e_ti),
    z_t = sigmoid(f_beta(h_{t-1})) * sum_i alpha_ti a_i,
    (h_t, c_t) = LSTM([E y_{t-1}; z_t], (h_{t-1}, c_{t-1})),
    p(y_t) = softmax(L_o(E y_{t-1} + L_h h_t + L_z z_t)).
    """

    def __init__(self, feature_dim: int, vocab_size: int, embed: int = 64, hidden: int = 128,
                 attention: int = 64, dropout: float = 0.2):
        super().__init__()
        self.init_h, self.init_c = nn.Linear(feature_dim, hidden), nn.Linear(feature_dim, hidden)
        self.att_features = nn.Linear(feature_dim, attention)   # W_a
        self.att_state = nn.Linear(hidden, attention)           # W_h
        self.att_score = nn.Linear(attention, 1)                # w
        self.gate = nn.Linear(hidden, 1)                        # f_beta: one scalar per step
        self.embedding = nn.Embedding(vocab_size, embed)
        self.lstm = nn.LSTMCell(embed + feature_dim, hidden)
        self.deep_h, self.deep_z = nn.Linear(hidden, embed), nn.Linear(feature_dim, embed)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(embed, vocab_size)

    def init_state(self, features: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(h, c) from the mean annotation vector, and W_a a_i, which every step reuses."""
        _check_features(features)
        mean = features.mean(dim=1)                             # the mean annotation vector [B, C]
        return torch.tanh(self.init_h(mean)), torch.tanh(self.init_c(mean)), self.att_features(features)

    def attend(self, keys: Tensor, h: Tensor) -> Tensor:  # W_a a [B, L, A], h [B, H] -> alpha [B, L]
        scores = self.att_score(torch.tanh(keys + self.att_state(h)[:, None]))
        return scores.squeeze(-1).softmax(dim=-1)

    def step(self, tokens: Tensor, state: tuple[Tensor, Tensor, Tensor], features: Tensor):
        h, c, keys = state
        alpha = self.attend(keys, h)                                        # [B, L]
        z = torch.sigmoid(self.gate(h)) * (alpha[:, :, None] * features).sum(dim=1)   # [B, C]
        word = self.embedding(tokens)                                       # [B, E]
        h, c = self.lstm(torch.cat([word, z], dim=-1), (h, c))
        logits = self.out(self.drop(word + self.deep_h(h) + self.deep_z(z)))
        return logits, (h, c, keys), alpha

    def forward(self, features: Tensor, inputs: Tensor) -> tuple[Tensor, Tensor]:
        return teacher_forced(self, features, inputs)


def _check_features(features: Tensor) -> None:
    if features.dim() != 3:
        raise ValueError(f"decoders read annotation vectors [B, L, C], got shape {tuple(features.shape)}; "
                         "flatten a feature map [B, C, h, w] with .flatten(2).transpose(1, 2)")


def teacher_forced(decoder: nn.Module, features: Tensor, inputs: Tensor) -> tuple[Tensor, Tensor | None]:
    """Run `decoder` on the true previous words: logits [B, T, V] and attention [B, T, L] (or None)."""
    state = decoder.init_state(features)
    logits, alphas = [], []
    for t in range(inputs.shape[1]):
        out, state, alpha = decoder.step(inputs[:, t], state, features)
        logits.append(out)
        alphas.append(alpha)
    return torch.stack(logits, dim=1), None if alphas[0] is None else torch.stack(alphas, dim=1)


def caption_loss(logits: Tensor, targets: Tensor, alphas: Tensor | None = None, penalty: float = 0.0,
                 pad_id: int = 0) -> tuple[Tensor, dict[str, Tensor]]:
    """Cross-entropy of the next word (padding ignored), plus the doubly stochastic attention penalty

    penalty * sum_i (1 - sum_t alpha_ti)^2 over the real (non-padding) steps, averaged over images.
    """
    ce = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=pad_id)
    if alphas is None or penalty == 0:
        return ce, {"xent": ce.detach()}
    real = (targets != pad_id).to(alphas.dtype)[:, :, None]                # [B, T, 1]
    doubly = ((1 - (alphas * real).sum(dim=1)) ** 2).sum(dim=1).mean()
    return ce + penalty * doubly, {"xent": ce.detach(), "attention_penalty": doubly.detach()}


def caption_step(model: nn.Module, batch: dict[str, Tensor], penalty: float = 0.0):
    """A training step for `fit` (teacher forcing): the model is called, then `caption_loss`."""
    logits, alphas = model(batch["features"], batch["inputs"])
    return caption_loss(logits, batch["targets"], alphas, penalty)


# ------------------------------------------------------------------ decoding


def _select(state, index: Tensor):
    """Rows `index` of a state: a tensor or a tuple of tensors."""
    return tuple(s[index] for s in state) if isinstance(state, tuple) else state[index]


@torch.no_grad()
def greedy_decode(decoder: nn.Module, features: Tensor, max_len: int = 20, bos_id: int = 2,
                  eos_id: int = 3) -> tuple[Tensor, Tensor | None]:
    """The most likely word at every step: ids [B, T] (<eos> included, then padding 0) and attention [B, T, L]."""
    decoder.eval()
    state = decoder.init_state(features)
    tokens = torch.full((len(features),), bos_id, dtype=torch.long, device=features.device)
    done = torch.zeros(len(features), dtype=torch.bool, device=features.device)
    out, alphas = [], []
    for _ in range(max_len):
        logits, state, alpha = decoder.step(tokens, state, features)
        tokens = logits.argmax(dim=-1).masked_fill(done, 0)
        out.append(tokens)
        alphas.append(alpha)
        done |= tokens == eos_id
        if done.all():
            break
    return torch.stack(out, dim=1), None if alphas[0] is None else torch.stack(alphas, dim=1)


@torch.no_grad()
def beam_search(decoder: nn.Module, features: Tensor, width: int = 3, max_len: int = 20, bos_id: int = 2,
                eos_id: int = 3) -> list[tuple[list[int], Tensor | None, float]]:
    """The best caption of each image by beam search, all images at once: per image (ids ending in
    <eos>, attention [T, L] or None, log-prob).

    Keeps the `width` most probable partial captions of each image at every step; a caption that
    emits <eos> is finished. An image stops when none of its unfinished captions can still beat
    its best finished one (adding words only lowers a log-probability), all stop after `max_len`
    words. width=1 is greedy decoding. The beams of image b are rows b * width ... of the batch;
    a beam that is not live has log-probability -inf, so it never wins a place.
    """
    if features.dim() != 3:
        raise ValueError(f"beam_search reads annotation vectors [B, L, C], got {tuple(features.shape)}")
    if width < 1:
        raise ValueError(f"beam width must be at least 1, got {width}")
    decoder.eval()
    n, device = len(features), features.device
    features = features.repeat_interleave(width, dim=0)                   # [B * K, L, C]
    state = decoder.init_state(features)
    tokens = torch.full((n * width,), bos_id, dtype=torch.long, device=device)
    scores = torch.full((n, width), -math.inf, device=device)            # log-probability of each live caption
    scores[:, 0] = 0.0                                                    # at first one caption per image: <bos>
    words = torch.zeros(n, width, 0, dtype=torch.long, device=device)    # [B, K, t]
    attention: Tensor | None = None                                       # [B, K, t, L]
    best_done = torch.full((n,), -math.inf, device=device)
    finished: list[list[tuple[float, list[int], Tensor | None]]] = [[] for _ in range(n)]
    rows = torch.arange(n, device=device)[:, None]                        # [B, 1]
    for _ in range(max_len):
        logits, state, alpha = decoder.step(tokens, state, features)
        total = scores[:, :, None] + logits.log_softmax(dim=-1).view(n, width, -1)   # [B, K, V]
        top, flat = total.flatten(1).topk(min(width, total[0].numel()), dim=1)       # [B, K] each, best first
        parent, word = flat // total.shape[2], flat % total.shape[2]
        words = torch.cat([words[rows, parent], word[:, :, None]], dim=2)
        if alpha is not None:
            step_alpha = alpha.view(n, width, -1)[rows, parent][:, :, None]          # [B, K, 1, L]
            attention = step_alpha if attention is None else torch.cat([attention[rows, parent], step_alpha], dim=2)
        ended = (word == eos_id) & (top > -math.inf)
        for b, k in ended.nonzero().tolist():
            finished[b].append((top[b, k].item(), words[b, k].tolist(),
                                None if attention is None else attention[b, k]))
        best_done = torch.maximum(best_done, top.masked_fill(~ended, -math.inf).amax(dim=1))
        live = (word != eos_id) & (top > best_done[:, None])
        if not live.any():
            break
        scores = top.masked_fill(~live, -math.inf)
        tokens = word.flatten()
        state = _select(state, (rows * width + parent).flatten())
    out = []
    for b in range(n):
        if not finished[b]:  # nothing ended within max_len: take the best unfinished caption
            k = int(scores[b].argmax())
            finished[b] = [(scores[b, k].item(), words[b, k].tolist(), None if attention is None else attention[b, k])]
        score, seq, att = max(finished[b], key=lambda f: f[0])
        out.append((seq, att, score))
    return out


def decode_ids(vocab: Vocab, ids: Sequence[int]) -> str:
    """Token ids -> text, stopping at <eos>."""
    return vocab.decode([int(i) for i in ids])


def blind_caption(captions: Sequence[Sequence[str]]) -> str:
    """What an image-blind language model says for every image, decoding greedily.

    Without the image, the best a decoder can learn is how often each word follows each prefix
    in the training captions (each image's references sharing one unit of weight, as
    `CaptionPairs` samples them). Greedy decoding of those counts: take the most frequent next
    word (or the end) after the words so far, keep the captions that agree, repeat.
    """
    live = [(c.split(), 1.0 / len(refs)) for refs in captions for c in refs]
    if not live:
        raise ValueError("blind_caption needs at least one training caption")
    words: list[str] = []
    while True:
        votes: Counter = Counter()
        for tokens, weight in live:
            votes[tokens[len(words)] if len(tokens) > len(words) else None] += weight
        best = min(votes, key=lambda w: (-votes[w], w is not None, w or ""))  # ties: stop first, then a-z
        if best is None:
            return " ".join(words)
        words.append(best)
        live = [(tokens, weight) for tokens, weight in live if len(tokens) >= len(words) and tokens[len(words) - 1] == best]


# ------------------------------------------------------------------ nouns


def named_nouns(caption: str, noun_forms: dict[str, str]) -> set[str]:
    """The object nouns a caption names: its words looked up in `noun_forms` ("birds" -> "bird")."""
    return {noun_forms[w] for w in caption.split() if w in noun_forms}


def noun_hits(captions: Sequence[str], nouns: Sequence[Sequence[str]], noun_forms: dict[str, str]) -> np.ndarray:
    """Per caption [N, 3]: the named nouns that are in its scene, the nouns it names, the scene's
    nouns (each noun counted once per caption or scene). Column sums give `noun_scores`; weighted
    sums give its bootstrap (`noun_precision_bootstrap`)."""
    if len(captions) != len(nouns):
        raise ValueError(f"{len(captions)} captions but {len(nouns)} scenes of nouns")
    rows = []
    for caption, scene in zip(captions, nouns):
        named, truth = named_nouns(caption, noun_forms), set(scene)
        rows.append((len(named & truth), len(named), len(truth)))
    return np.array(rows, dtype=np.float64).reshape(len(rows), 3)


def noun_scores(captions: Sequence[str], nouns: Sequence[Sequence[str]],
                noun_forms: dict[str, str]) -> tuple[float, float]:
    """(precision, recall) of the nouns the captions name against each scene's true nouns.

    Micro-averaged over the corpus, as sklearn's precision_score(average="micro") on the sets:
    precision = named nouns that are in their scene / all named nouns; recall = true nouns
    named / all true nouns.
    """
    right, named, truth = noun_hits(captions, nouns, noun_forms).sum(axis=0)
    return float(right / max(1.0, named)), float(right / max(1.0, truth))


def noun_precision_bootstrap(hits: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Noun precision under each row of bootstrap `weights` [samples, N] (e.g. `stamp_bootstrap_weights`)
    from `noun_hits` [N, 3]: [samples]. The same weights for two captioners resample them in pairs."""
    if weights.shape[-1] != len(hits):
        raise ValueError(f"weights for {weights.shape[-1]} scenes but hits of {len(hits)} captions")
    return (weights @ hits[:, 0]) / np.maximum(1.0, weights @ hits[:, 1])


def noun_precision_chance(nouns: Sequence[Sequence[str]], vocabulary: Sequence[str]) -> float:
    """Expected noun precision of a caption naming one noun drawn uniformly from `vocabulary`:
    the mean, over scenes, of the share of the vocabulary that is in the scene."""
    vocabulary = set(vocabulary)
    if not vocabulary or not nouns:
        raise ValueError("noun_precision_chance needs scenes and a non-empty vocabulary")
    return float(np.mean([len(set(n) & vocabulary) / len(vocabulary) for n in nouns]))


def best_constant_noun(nouns: Sequence[Sequence[str]], vocabulary: Sequence[str]) -> str:
    """The noun in the most scenes of `nouns` (ties: a-z): the best noun to name for every image.

    Chosen on the training scenes, it is the image-blind baseline for noun precision."""
    counts = Counter(n for scene in nouns for n in set(scene))
    return min(sorted(vocabulary), key=lambda n: -counts[n])


# ------------------------------------------------------------------ BLEU


def _ngrams(words: Sequence[str], n: int) -> Counter:
    return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def bleu_statistics(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[Sequence[str]]],
                    max_n: int = 4) -> np.ndarray:
    """What corpus BLEU adds up, per sentence -> [N, 2 * max_n + 2]:

    n-grams of the hypothesis found in a reference (clipped: each counted at most as often as in
    the reference that has it most) for n = 1..max_n, all its n-grams for n = 1..max_n, its
    length c, and the length r of its closest reference: the shorter one when two are equally
    close, as sacrebleu, nltk and the COCO scorer do (torchmetrics' BLEUScore takes the first).
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} reference lists")
    rows = []
    for hyp, refs in zip(hypotheses, references):
        if not refs:
            raise ValueError("every hypothesis needs at least one reference")
        matched, total = [], []
        for n in range(1, max_n + 1):
            counts, most = _ngrams(hyp, n), Counter()
            for ref in refs:
                most |= _ngrams(ref, n)                # per n-gram, the largest count in any reference
            matched.append(sum(min(k, most[g]) for g, k in counts.items()))
            total.append(sum(counts.values()))
        closest = min((len(ref) for ref in refs), key=lambda r: (abs(r - len(hyp)), r))  # tie: shorter
        rows.append(matched + total + [len(hyp), closest])
    return np.array(rows, dtype=np.float64).reshape(len(rows), 2 * max_n + 2)


def bleu_from_statistics(stats: np.ndarray, max_n: int = 4) -> float:
    """BLEU-`max_n` from `bleu_statistics` rows (summed here) that were counted up to n >= max_n.

    p_n = matched n-grams / all n-grams over the corpus; BLEU = BP * exp(mean_n log p_n), with the
    brevity penalty BP = exp(1 - r / c) when the total length c is not above r, else 1.
    """
    total = np.asarray(stats, dtype=np.float64).reshape(-1, stats.shape[-1]).sum(axis=0)
    orders = (len(total) - 2) // 2
    if max_n > orders:
        raise ValueError(f"statistics counted n-grams up to {orders}, cannot give BLEU-{max_n}")
    matched, counted = total[:max_n], total[orders:orders + max_n]
    c, r = total[-2], total[-1]
    if matched.min() == 0:
        return 0.0
    brevity = 1.0 if c > r else math.exp(1 - r / c)
    return brevity * math.exp(np.mean(np.log(matched / counted)))


def corpus_bleu(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[Sequence[str]]],
                max_n: int = 4) -> float:
    """Corpus BLEU-`max_n` (Papineni et al., 2002) of tokenised captions against several references
    each, as sacrebleu and nltk's corpus_bleu without smoothing (and torchmetrics' BLEUScore, but for
    length ties: see `bleu_statistics`)."""
    return bleu_from_statistics(bleu_statistics(hypotheses, references, max_n), max_n)


def bootstrap_bleu(stats: np.ndarray, max_n: int = 4, samples: int = 200, seed: int = 0) -> np.ndarray:
    """BLEU-`max_n` on `samples` resamplings (with replacement) of the sentences: its spread."""
    rng = np.random.default_rng(seed)
    return np.array([bleu_from_statistics(stats[rng.integers(0, len(stats), len(stats))], max_n)
                     for _ in range(samples)])


def stamp_bootstrap_weights(scene_stamps: Sequence[Sequence[str]], samples: int = 200,
                            seed: int = 0) -> np.ndarray:
    """Bootstrap weights [samples, N] that resample the stamps, not the scenes.

    Scenes built from the same few stamp pictures are not independent tests: a stamp the encoder
    happens to recognise lifts every scene it appears in. Each resampling draws the distinct
    stamps with replacement; a scene then counts as often as the product of its stamps' draws
    (the pigeonhole bootstrap of crossed designs, Owen 2007): a scene with one stamp drawn twice
    counts twice, one whose stamps were not all drawn drops out. With one stamp per scene and
    no stamp shared, this is the ordinary bootstrap of the scenes.
    """
    index = {s: i for i, s in enumerate(sorted({s for stamps in scene_stamps for s in stamps}))}
    if not index:
        raise ValueError("stamp_bootstrap_weights needs scenes with stamps")
    members = [sorted({index[s] for s in stamps}) for stamps in scene_stamps]
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(len(index), np.full(len(index), 1 / len(index)), size=samples)   # [samples, S]
    return np.stack([draws[:, m].prod(axis=1) for m in members], axis=1).astype(np.float64)


def cluster_bootstrap_bleu(stats: np.ndarray, scene_stamps: Sequence[Sequence[str]], max_n: int = 4,
                           samples: int = 200, seed: int = 0) -> np.ndarray:
    """BLEU-`max_n` on `samples` stamp resamplings (`stamp_bootstrap_weights`) of the test scenes.

    The same seed draws the same stamps for every captioner, so the difference of two captioners'
    arrays is the paired bootstrap of their difference.
    """
    if len(stats) != len(scene_stamps):
        raise ValueError(f"{len(stats)} rows of statistics but {len(scene_stamps)} scenes")
    weights = stamp_bootstrap_weights(scene_stamps, samples, seed)
    return np.array([bleu_from_statistics((w @ stats)[None], max_n) for w in weights])


def fixed_caption_bleu(candidates: Sequence[Sequence[str]], references: Sequence[Sequence[Sequence[str]]],
                       max_n: int = 4) -> np.ndarray:
    """Corpus BLEU-`max_n` of each candidate caption said for every image: [len(candidates)].

    Equal to corpus_bleu([candidate] * len(references), references) for each candidate, but the
    references are counted once: per n-gram, its largest count in each image's references.
    """
    most: dict[tuple[str, ...], list[int]] = {}
    for refs in references:
        for n in range(1, max_n + 1):
            best: Counter = Counter()
            for ref in refs:
                best |= _ngrams(ref, n)
            for gram, k in best.items():
                most.setdefault(gram, []).append(k)
    counts = {gram: np.array(ks) for gram, ks in most.items()}
    lengths = [[len(ref) for ref in refs] for refs in references]
    closest: dict[int, int] = {}
    out = []
    for hyp in candidates:
        c = len(hyp)
        if c not in closest:  # total closest-reference length, shorter on ties as in `bleu_statistics`
            closest[c] = sum(min(ls, key=lambda r: (abs(r - c), r)) for ls in lengths)
        matched = [sum(int(np.minimum(k, counts[g]).sum()) for g, k in _ngrams(hyp, n).items() if g in counts)
                   for n in range(1, max_n + 1)]
        total = [len(references) * max(0, c - n + 1) for n in range(1, max_n + 1)]
        row = np.array([matched + total + [len(references) * c, closest[c]]], dtype=np.float64)
        out.append(bleu_from_statistics(row, max_n))
    return np.array(out)


def best_fixed_caption(candidates: Sequence[str], references: Sequence[Sequence[Sequence[str]]],
                       max_n: int = 4) -> tuple[str, float]:
    """The candidate with the highest corpus BLEU-`max_n` when said for every image, and that BLEU.

    Searched over the training captions against the training references, it is the strongest
    image-blind caption for BLEU (ties: the first candidate).
    """
    if not candidates:
        raise ValueError("best_fixed_caption needs at least one candidate")
    scores = fixed_caption_bleu([c.split() for c in candidates], references, max_n)
    best = int(np.argmax(scores))
    return candidates[best], float(scores[best])


# ------------------------------------------------------------------ where attention points


def pointing(alphas: Tensor, words: Sequence[str], grid: tuple[int, int], image_size: int,
             boxes: Sequence[Sequence[int]], nouns: Sequence[str], noun_forms: dict[str, str]) -> list[tuple[bool, float]]:
    """For each generated word that names an object in the scene: is the attention peak in its box?

    alphas [T, h * w] is the attention at each step of the caption `words` (same length, or
    longer); `noun_forms` maps a word ("birds") to its noun ("bird"). A peak is the centre of
    the grid cell with the largest weight; it counts as a hit if it lies in any box of an
    object with that noun. Returns (hit, chance) per such word, chance being the share of the
    image those boxes cover (where a randomly placed peak would land).
    """
    h, w = grid
    if alphas.shape[-1] != h * w:
        raise ValueError(f"attention over {alphas.shape[-1]} locations does not fit a {h}x{w} grid")
    out = []
    for t, word in enumerate(words[:len(alphas)]):
        noun = noun_forms.get(word)
        mine = [b for b, n in zip(boxes, nouns) if n == noun]
        if not mine:
            continue  # not a noun, or a noun of nothing in the scene
        inside = np.zeros((image_size, image_size), dtype=bool)
        for x0, y0, x1, y1 in mine:
            inside[y0:y1, x0:x1] = True
        peak = int(alphas[t].argmax())
        py = int((peak // w + 0.5) * image_size / h)
        px = int((peak % w + 0.5) * image_size / w)
        out.append((bool(inside[py, px]), float(inside.mean())))
    return out
