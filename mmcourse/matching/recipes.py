"""Image <-> recipe retrieval, as in im2recipe (Salvador et al., 2017), small: notebook 02.

A recipe is embedded by two text encoders, concatenated and projected:

* ingredients: a bidirectional LSTM over ingredient tokens ("carrot", "olive oil", ...);
* instructions: each step read by a sentence-level LSTM, then an LSTM over the steps' vectors
  (the paper's two-level encoder; it uses pretrained skip-thought vectors for the first level,
  we learn both).

A dish image is embedded by the shared `ImageCNN`. Both sides go through a linear layer,
tanh and L2 normalisation, and are trained with the cosine-embedding loss on pairs of which
80% are mismatched. Semantic regularisation adds one dish classifier shared by both sides.
Retrieval is scored as in the paper (`retrieval_subsets`), against the strongest trivial
baseline: a class oracle that knows each pair's dish and nothing else (`class_oracle_subsets`).

    tensors = encode_recipes(rows, images, ingredient_vocab, word_vocab)   # dict of tensors
    model = Im2Recipe(len(ingredient_vocab), len(word_vocab), n_classes=8)
    step = functools.partial(im2recipe_step, semantic_weight=0.1)
    fit(model, make_loader(TensorRows(tensors), 128, shuffle=True), step, epochs=10)   # training.TensorRows
"""
from __future__ import annotations

import textwrap
from collections.abc import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmcourse.encoders import ImageCNN, TextEncoder
from mmcourse.retrieval import cosine_scores, median_rank, recall_at_k
from mmcourse.text import Vocab
from mmcourse.training import all_gather_cat, to_device
from mmcourse.viz import new_figure

# ------------------------------------------------------------------ tensors


def _ingredient_tokens(text: str) -> list[str]:
    # An ingredient list travels as one string "carrot|olive oil"; each name is one token.
    return [t for t in text.split("|") if t]


def ingredient_vocab(ingredient_lists: Sequence[Sequence[str]], min_freq: int = 1) -> Vocab:
    """A vocabulary whose tokens are whole ingredient names ("olive oil" is one token)."""
    return Vocab.build(["|".join(names) for names in ingredient_lists], min_freq=min_freq,
                       tokenizer=_ingredient_tokens)


def encode_recipes(ingredients: Sequence[Sequence[str]], instructions: Sequence[Sequence[str]],
                   ingredient_vocab: Vocab, word_vocab: Vocab, max_steps: int = 8,
                   max_words: int = 16) -> dict[str, Tensor]:
    """Token ids of a list of recipes:

    ingredients [N, I] and n_ingredients [N]; steps [N, S, W] (one row of word ids per step),
    n_steps [N] and n_words [N, S] (0 for the padding steps after the last one).
    """
    if len(ingredients) != len(instructions):
        raise ValueError(f"{len(ingredients)} ingredient lists but {len(instructions)} instruction lists")
    ing, n_ing = ingredient_vocab.encode_batch(["|".join(names) for names in ingredients])
    n = len(instructions)
    steps = torch.zeros(n, max_steps, max_words, dtype=torch.long)
    n_words = torch.zeros(n, max_steps, dtype=torch.long)
    for row, recipe in enumerate(instructions):
        if not recipe:
            raise ValueError(f"recipe {row} has no instructions; every recipe needs at least one step")
        ids, lengths = word_vocab.encode_batch(list(recipe[:max_steps]), max_len=max_words)
        steps[row, :len(ids), :ids.shape[1]] = ids
        n_words[row, :len(ids)] = lengths
    if int(n_ing.min()) < 1 or int(n_words[:, 0].min()) < 1:
        raise ValueError("every recipe needs at least one ingredient and a first step with words")
    return {"ingredients": ing, "n_ingredients": n_ing, "steps": steps,
            "n_steps": (n_words > 0).sum(dim=1), "n_words": n_words}


# ------------------------------------------------------------------ encoders


class RecipeEncoder(nn.Module):
    """Ingredients (bi-LSTM) and instructions (sentence LSTM, then an LSTM over steps) -> [B, dim].

    Lengths may be None (every position is real), as in `TextEncoder`.
    """

    def __init__(self, n_ingredients: int, n_words: int, dim: int = 64, hidden: int = 64, embed: int = 32):
        super().__init__()
        self.ingredients = TextEncoder(n_ingredients, embed, hidden, rnn="lstm", bidirectional=True)
        self.sentences = TextEncoder(n_words, embed, hidden, rnn="lstm")
        self.steps = nn.LSTM(hidden, hidden, batch_first=True)
        self.project = nn.Linear(self.ingredients.out_dim + hidden, dim)

    def encode_instructions(self, steps: Tensor, n_steps: Tensor | None = None,
                            n_words: Tensor | None = None) -> Tensor:  # [B, S, W] -> [B, hidden]
        if steps.dim() != 3:
            raise ValueError(f"steps must be word ids [B, steps, words], got shape {tuple(steps.shape)}")
        b, s, w = steps.shape
        if n_words is None:
            _, sentence = self.sentences(steps.flatten(0, 1))                # [B * S, H]
        else:
            # Only the real steps are read (recipes have 4-5 of 8 slots); padding steps stay zero.
            # They come after the last real step, so the forward LSTM's state read below never sees them.
            real = n_words.flatten() > 0                                     # [B * S]
            _, read = self.sentences(steps.flatten(0, 1)[real], n_words.flatten()[real])
            sentence = read.new_zeros(b * s, read.shape[-1]).index_copy(0, real.nonzero().squeeze(1), read)
        states, _ = self.steps(sentence.view(b, s, -1))                     # [B, S, H]
        if n_steps is None:
            return states[:, -1]
        # A forward LSTM's state after the last real step ignores the padding steps after it.
        last = (n_steps - 1).clamp(min=0).to(states.device)
        return states[torch.arange(b, device=states.device), last]

    def forward(self, ingredients: Tensor, steps: Tensor, n_ingredients: Tensor | None = None,
                n_steps: Tensor | None = None, n_words: Tensor | None = None) -> Tensor:
        _, ing = self.ingredients(ingredients, n_ingredients)                # [B, 2H]
        ins = self.encode_instructions(steps, n_steps, n_words)              # [B, H]
        return self.project(torch.cat([ing, ins], dim=-1))                   # [B, dim]


class Im2Recipe(nn.Module):
    """Image and recipe encoders into one `dim`-d space, and the dish classifier both share.

    Each side is linear -> tanh -> L2-normalised, as in the paper's code. The classifier reads
    the normalised embedding of either side (semantic regularisation); without a classification
    loss it is simply never trained.
    """

    def __init__(self, n_ingredients: int, n_words: int, n_classes: int, dim: int = 64, width: int = 16,
                 depth: int = 4, hidden: int = 64, embed: int = 32):
        super().__init__()
        self.image_encoder = ImageCNN(width, depth, out_dim=dim)
        self.recipe_encoder = RecipeEncoder(n_ingredients, n_words, dim, hidden, embed)
        self.classifier = nn.Linear(dim, n_classes)

    def encode_images(self, images: Tensor) -> Tensor:  # [B, 3, H, W] -> [B, dim], unit length
        return F.normalize(torch.tanh(self.image_encoder(images)), dim=-1)

    def encode_recipes(self, batch: dict[str, Tensor]) -> Tensor:  # -> [B, dim], unit length
        vector = self.recipe_encoder(batch["ingredients"], batch["steps"], batch.get("n_ingredients"),
                                     batch.get("n_steps"), batch.get("n_words"))
        return F.normalize(torch.tanh(vector), dim=-1)

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Everything the loss needs: both embeddings and the shared classifier's logits on each."""
        image, recipe = self.encode_images(batch["image"]), self.encode_recipes(batch)
        return {"image": image, "recipe": recipe,
                "image_logits": self.classifier(image), "recipe_logits": self.classifier(recipe)}


# ------------------------------------------------------------------ the loss


def sample_pairs(n: int, negative_share: float = 0.8, device: torch.device | str = "cpu",
                 generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Pairs (image index, recipe index, target +1/-1) over a batch of n matching pairs.

    All n matching pairs, plus enough mismatched ones (a random other recipe of the batch) that
    they make up `negative_share` of all pairs, as the paper's 80%. Drawn from torch's RNG.
    """
    if not 0 <= negative_share < 1:
        raise ValueError(f"negative_share must be in [0, 1), got {negative_share}")
    if n < 2 and negative_share > 0:
        raise ValueError("mismatched pairs need a batch of at least 2 recipes")
    n_neg = round(n * negative_share / (1 - negative_share))
    same = torch.arange(n, device=device)
    i = torch.randint(0, n, (n_neg,), device=device, generator=generator)
    j = (i + torch.randint(1, max(n, 2), (n_neg,), device=device, generator=generator)) % n  # never i itself
    target = torch.cat([torch.ones(n, device=device), -torch.ones(n_neg, device=device)])
    return torch.cat([same, i]), torch.cat([same, j]), target


def im2recipe_loss(out: dict[str, Tensor], labels: Tensor, margin: float = 0.1, negative_share: float = 0.8,
                   semantic_weight: float = 0.0) -> tuple[Tensor, dict[str, Tensor]]:
    """(1 - w) * cosine-embedding loss over sampled pairs + w * the shared classifier's cross-entropy.

    Cosine-embedding loss: 1 - cos(a, b) for a matching pair, max(0, cos(a, b) - margin) for a
    mismatched one. w = `semantic_weight` (0: no semantic regularisation; the paper's 0.02).
    """
    image, recipe = out["image"], out["recipe"]
    i, j, target = sample_pairs(len(image), negative_share, image.device)
    cos = F.cosine_embedding_loss(image[i], recipe[j], target, margin=margin)
    labels = labels.to(image.device)
    ce = (F.cross_entropy(out["image_logits"], labels) + F.cross_entropy(out["recipe_logits"], labels)) / 2
    loss = (1 - semantic_weight) * cos + semantic_weight * ce if semantic_weight else cos
    accuracy = (out["image_logits"].argmax(1) == labels).float().mean()
    # Logged as tensors: `fit` turns them into numbers, and the loss itself never syncs a GPU.
    return loss, {"cosine": cos.detach(), "class_ce": ce.detach(), "image_class_acc": accuracy}


def im2recipe_step(model: nn.Module, batch: dict[str, Tensor], semantic_weight: float = 0.0,
                   margin: float = 0.1, negative_share: float = 0.8) -> tuple[Tensor, dict[str, Tensor]]:
    """A training step for `fit`: the model is called (DDP-safe), then `im2recipe_loss`."""
    return im2recipe_loss(model(batch), batch["label"], margin, negative_share, semantic_weight)


# ------------------------------------------------------------------ evaluation


@torch.no_grad()
def embed_pairs(model: nn.Module, loader: Iterable) -> tuple[Tensor, Tensor]:
    """(image vectors [N, dim], recipe vectors [N, dim]) of every batch of `loader`, in eval mode.

    Under torchrun each process embeds its shard and the vectors of all processes are gathered,
    so a ranking metric ranks against the whole gallery.
    """
    model.eval()
    device = next(model.parameters()).device
    images, recipes = [], []
    for batch in loader:
        batch = to_device(batch, device)
        images.append(model.encode_images(batch["image"]))
        recipes.append(model.encode_recipes(batch))
    return all_gather_cat(torch.cat(images)).cpu(), all_gather_cat(torch.cat(recipes)).cpu()


def validation_ranks(model: nn.Module, loader: Iterable) -> dict[str, float]:
    """A `val_fn` for `fit`: image -> recipe medR, R@10 and (where the batches carry dish labels)
    the within-class medR over the whole validation set."""
    images, recipes = embed_pairs(model, loader)
    batches = list(loader)
    labels = None
    if all("label" in b for b in batches):
        device = next(model.parameters()).device
        labels = all_gather_cat(torch.cat([b["label"] for b in batches]).to(device)).cpu()
    return ranking_metrics(cosine_scores(images, recipes), ks=(10,), labels=labels)


def subset_picks(n_pairs: int, n: int = 1000, repeats: int = 10, seed: int = 0) -> list[Tensor]:
    """The protocol's subsets: `repeats` draws of n distinct pair indices out of `n_pairs`.

    The model, the baselines and the class oracle all read these same subsets for one seed.
    """
    if not 1 <= n <= n_pairs:
        raise ValueError(f"subsets of n={n} pairs need 1 <= n <= {n_pairs} (the number of pairs)")
    rng = np.random.default_rng(seed)
    return [torch.from_numpy(rng.choice(n_pairs, n, replace=False)) for _ in range(repeats)]


def within_class(scores: Tensor, query_labels: Tensor, item_labels: Tensor) -> Tensor:
    """Scores [Q, N] with every item of another class than its query's hidden (-inf).

    The median rank of these scores is the rank of the true partner among the items of its own
    class: what a model knows beyond the dish class.
    """
    other = query_labels.reshape(-1, 1) != item_labels.reshape(1, -1)
    return scores.masked_fill(other.to(scores.device), float("-inf"))


def ranking_metrics(scores: Tensor, ks: Sequence[int] = (1, 5, 10),
                    labels: Tensor | None = None) -> dict[str, float]:
    """medR and R@K of scores [n, n] whose diagonal holds the true pairs; with `labels` [n] also
    the within-class medR (ranks among the items of the query's class)."""
    relevant = torch.eye(len(scores), dtype=torch.bool)
    out = {"medR": median_rank(scores, relevant)} | {f"R@{k}": recall_at_k(scores, relevant, k) for k in ks}
    if labels is not None:
        out["within-class medR"] = median_rank(within_class(scores, labels, labels), relevant)
    return out


def _collect(per_subset: list[dict[str, dict[str, float]]]) -> dict[str, np.ndarray]:
    # [{direction: {metric: value}}] per subset -> {"direction metric": values [repeats]}
    return {f"{d} {m}": np.array([s[d][m] for s in per_subset]) for d in per_subset[0] for m in per_subset[0][d]}


def retrieval_subsets(image_vecs: Tensor, recipe_vecs: Tensor, n: int = 1000, repeats: int = 10,
                      seed: int = 0, ks: Sequence[int] = (1, 5, 10),
                      labels: Sequence[int] | Tensor | None = None) -> dict[str, np.ndarray]:
    """im2recipe's protocol: medR and R@K in both directions on `repeats` random subsets of n pairs.

    Returns {metric name: values [repeats]}; names like "im2rec medR", "rec2im R@5", and with the
    dish `labels` of the pairs also "im2rec within-class medR". Pair i is image i with recipe i;
    each subset ranks its n recipes for each of its n images (and the other way round).
    """
    if image_vecs.shape != recipe_vecs.shape:
        raise ValueError(f"need one recipe per image, got {tuple(image_vecs.shape)} and {tuple(recipe_vecs.shape)}")
    labels = None if labels is None else torch.as_tensor(labels)
    per_subset = []
    for pick in subset_picks(len(image_vecs), n, repeats, seed):
        scores = cosine_scores(image_vecs[pick], recipe_vecs[pick])         # [n images, n recipes]
        sub = None if labels is None else labels[pick]
        per_subset.append({"im2rec": ranking_metrics(scores, ks, sub), "rec2im": ranking_metrics(scores.T, ks, sub)})
    return _collect(per_subset)


# ------------------------------------------------------------------ the class oracle


def class_oracle_ranks(labels: Sequence[int] | np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Ranks [draws, n] of the true partners under the dish-class oracle, in a gallery of the n
    pairs with these dish `labels`.

    The oracle knows each pair's dish class and nothing else: it puts the query's class first, in
    a random order, so the true partner's rank is uniform on 1..n_c (n_c: the pairs of its class),
    independently for every query and draw.
    """
    labels = np.asarray(labels)
    n_c = (labels[:, None] == labels[None, :]).sum(axis=1)
    return 1 + np.floor(rng.random((draws, len(labels))) * n_c).astype(int)


def class_oracle_subsets(labels: Sequence[int] | Tensor, n: int = 1000, repeats: int = 10, seed: int = 0,
                         ks: Sequence[int] = (1, 5, 10), draws: int = 50) -> dict[str, np.ndarray]:
    """The strongest trivial retriever under `retrieval_subsets`' protocol, on the same subsets.

    Each subset's medR and R@K are averaged over `draws` random orders within the classes (seeded
    by `seed`); the names are those of `retrieval_subsets` with `labels`. Both directions are the
    same retriever (a recipe's class is an image's class), and the within-class medR is its medR.
    """
    labels = torch.as_tensor(labels)
    rng = np.random.default_rng([seed, 1])  # not the stream that drew the subsets
    per_subset = []
    for pick in subset_picks(len(labels), n, repeats, seed):
        found = {}
        for direction in ("im2rec", "rec2im"):
            ranks = class_oracle_ranks(labels[pick].numpy(), draws, rng)
            medr = float(np.median(ranks, axis=1).mean())
            found[direction] = {"medR": medr} | {f"R@{k}": float((ranks <= k).mean()) for k in ks} \
                | {"within-class medR": medr}
        per_subset.append(found)
    return _collect(per_subset)


def class_oracle_recall(labels: Sequence[int] | Tensor, k: int) -> float:
    """The class oracle's exact expected R@K on one gallery: min(k, n_c) / n_c averaged over the
    queries, where n_c counts the items of the query's class (the true partner among them)."""
    labels = torch.as_tensor(labels)
    n_c = (labels.reshape(-1, 1) == labels.reshape(1, -1)).sum(dim=1).double()
    return (n_c.clamp(max=k) / n_c).mean().item()


# ------------------------------------------------------------------ the CCA baseline


def colour_histogram(images: Tensor, bins: int = 4) -> Tensor:
    """Joint RGB histogram of each image [N, 3, H, W] -> [N, bins^3], each row summing to 1."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected RGB images [N, 3, H, W], got shape {tuple(images.shape)}")
    q = (images.clamp(0, 1) * bins).long().clamp(max=bins - 1)              # [N, 3, H, W] bin per channel
    index = (q[:, 0] * bins + q[:, 1]) * bins + q[:, 2]                      # [N, H, W]
    hist = torch.zeros(len(images), bins ** 3, device=images.device)
    hist.scatter_add_(1, index.flatten(1), torch.ones_like(index.flatten(1), dtype=hist.dtype))
    return hist / hist.sum(dim=1, keepdim=True)


def recipe_text(ingredients: Sequence[str], instructions: Sequence[str]) -> str:
    """One document per recipe for a bag of words: ingredient names (joined by _) and the steps."""
    return " ".join(name.replace(" ", "_") for name in ingredients) + " " + " ".join(instructions)


def cca_embeddings(train_images: np.ndarray, train_texts: np.ndarray, images: np.ndarray, texts: np.ndarray,
                   n_components: int = 16) -> tuple[Tensor, Tensor]:
    """The paper's first baseline: CCA (scikit-learn) fitted on training pairs of image features
    [N, p] and text features [N, q], then both sides of new pairs projected -> ([M, c], [M, c])."""
    from sklearn.cross_decomposition import CCA

    if len(train_images) != len(train_texts) or len(images) != len(texts):
        raise ValueError("CCA needs paired rows: as many image features as text features")
    cca = CCA(n_components=n_components, max_iter=1000).fit(train_images, train_texts)
    x, y = cca.transform(images, texts)
    return torch.from_numpy(np.asarray(x)).float(), torch.from_numpy(np.asarray(y)).float()


# ------------------------------------------------------------------ showing recipes


def recipe_card(ingredient_lines: Sequence[str], instructions: Sequence[str], width: int = 52) -> str:
    """A recipe as short wrapped text: the ingredient list, then the numbered steps."""
    lines = textwrap.wrap("Ingredients: " + ", ".join(ingredient_lines), width)
    for n, step in enumerate(instructions, 1):
        lines += textwrap.wrap(f"{n}. {step}", width, subsequent_indent="   ")
    return "\n".join(lines)


def recipe_figure(images: Sequence, cards: Sequence[str], titles: Sequence[str] | None = None,
                  ncols: int = 2, size: float = 1.8):
    """Rows of (dish image, recipe text) -> Figure; `ncols` such pairs per row."""
    from mmcourse.viz import to_image_array

    if len(images) != len(cards):
        raise ValueError(f"{len(images)} images but {len(cards)} recipe cards")
    nrows = -(-len(images) // ncols)
    fig, axes = new_figure(nrows, 2 * ncols, figsize=(ncols * 3.4 * size, nrows * 1.25 * size),
                           gridspec_kw={"width_ratios": [1, 2.4] * ncols})
    for ax in axes.flat:
        ax.axis("off")
    for k, (image, card) in enumerate(zip(images, cards)):
        left, right = axes[k // ncols, 2 * (k % ncols)], axes[k // ncols, 2 * (k % ncols) + 1]
        left.imshow(to_image_array(image))
        if titles is not None:
            left.set_title(titles[k], fontsize=8)
        right.text(0, 1, card, va="top", ha="left", fontsize=6.5, family="monospace", transform=right.transAxes)
    return fig
