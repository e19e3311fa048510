"""CLIP content scores through the real open_clip load path, with a tiny random-weight model."""

from __future__ import annotations

import json
import math
import os
import time

import numpy as np
import pytest
import torch

from giflab.features import CLIP_FEATURES, ClipScorer, ClipUnavailable, extract_features
from giflab.features.clip import DEFAULT_MODEL, DEFAULT_PRETRAINED, cached_weights_file

TINY = "giflab-tiny-clip"
TINY_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture
def tiny_weights(tmp_path):
    """A tiny open_clip model registered under ``TINY``, random weights (seeded), logit scale 100."""
    import open_clip

    (tmp_path / f"{TINY}.json").write_text(json.dumps(TINY_CONFIG))
    open_clip.add_model_config(tmp_path / f"{TINY}.json")
    torch.manual_seed(0)
    model = open_clip.create_model(TINY, pretrained=None)
    with torch.no_grad():
        model.logit_scale.fill_(math.log(100.0))
    path = tmp_path / "tiny.pt"
    torch.save(model.state_dict(), path)
    return path


def frames(n: int = 4, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(n)]


@pytest.mark.parametrize("as_weights_path", [False, True])
def test_tiny_model_scores_are_a_distribution(tiny_weights, as_weights_path):
    kwargs = (
        {"weights_path": tiny_weights} if as_weights_path else {"pretrained": str(tiny_weights)}
    )
    scorer = ClipScorer(model_name=TINY, **kwargs)
    first = scorer.score(frames())
    assert list(first) == list(CLIP_FEATURES)
    assert all(0.0 <= v <= 1.0 for v in first.values())
    assert sum(first.values()) == pytest.approx(1.0, abs=1e-9)
    assert scorer.score(frames()) == first  # bit-identical on a second call


def test_logit_scale_is_applied(tiny_weights):
    scorer = ClipScorer(model_name=TINY, pretrained=str(tiny_weights)).load()
    assert scorer.logit_scale == pytest.approx(100.0)
    imgs = frames()
    cos = (scorer.image_embeddings(imgs) @ scorer.text_embeddings.T).double()
    scaled = (100.0 * cos).softmax(dim=-1).mean(dim=0).tolist()
    unscaled = cos.softmax(dim=-1).mean(dim=0).tolist()
    got = list(scorer.score(imgs).values())
    assert got == pytest.approx(scaled, abs=1e-6)
    assert max(abs(a - b) for a, b in zip(got, unscaled, strict=True)) > 1e-3


def test_text_embeddings_are_computed_once(tiny_weights):
    scorer = ClipScorer(model_name=TINY, pretrained=str(tiny_weights)).load()
    text = scorer.text_embeddings
    scorer.score(frames())
    assert scorer.load().text_embeddings is text
    assert torch.allclose(text.norm(dim=-1), torch.ones(6, dtype=text.dtype))


def test_extract_features_fills_clip_scores(tiny_weights, tmp_path):
    from PIL import Image

    path = tmp_path / "a.gif"
    ims = [Image.fromarray(f) for f in frames(6)]
    ims[0].save(path, save_all=True, append_images=ims[1:], duration=80, loop=0)
    r = extract_features(path, ClipScorer(model_name=TINY, pretrained=str(tiny_weights)))
    assert r.clip_missing_reason is None
    assert sum(r[c] for c in CLIP_FEATURES) == pytest.approx(1.0)
    assert r.frames["clip"] == (0, 1, 3, 5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"weights_path": "/nonexistent/clip.pt"},
        {"pretrained": "no_such_tag"},
        {"pretrained": DEFAULT_PRETRAINED, "cache_dir": "EMPTY"},
    ],
)
def test_missing_weights_fail_fast_with_a_reason(kwargs, tmp_path):
    if kwargs.get("cache_dir") == "EMPTY":
        kwargs = {**kwargs, "cache_dir": str(tmp_path / "empty-cache")}
    scorer = ClipScorer(**kwargs)
    start = time.monotonic()
    with pytest.raises(ClipUnavailable) as err:
        scorer.score(frames())
    assert time.monotonic() - start < 5.0
    assert err.value.reason


def test_missing_weights_give_null_scores(tmp_path):
    from PIL import Image

    path = tmp_path / "a.gif"
    Image.fromarray(frames(1)[0]).save(path)
    r = extract_features(path, ClipScorer(weights_path=tmp_path / "missing.pt"))
    assert all(r[c] is None for c in CLIP_FEATURES)
    assert "missing.pt" in r.clip_missing_reason


REAL = cached_weights_file(DEFAULT_MODEL, DEFAULT_PRETRAINED, None)


@pytest.mark.skipif(
    REAL is None, reason=f"no cached {DEFAULT_MODEL}/{DEFAULT_PRETRAINED} weights (offline)"
)
def test_real_model_gives_a_clear_winner():
    """A blocky 8-bit-style sprite on a flat background should read as pixel art."""
    sprite = np.zeros((16, 16, 3), np.uint8) + (90, 160, 255)
    sprite[4:12, 5:11] = (230, 60, 40)
    sprite[5:7, 6:8] = (255, 255, 255)
    sprite[12:15, 5:7] = sprite[12:15, 9:11] = (60, 40, 20)
    image = np.kron(sprite, np.ones((14, 14, 1), np.uint8))
    scores = ClipScorer().score([image] * 4)
    assert max(scores, key=scores.get) == "clip_pixel_art"
    assert scores["clip_pixel_art"] > 0.5


def test_weights_lookup_reads_open_clip_tables_without_importing_torch(tmp_path):
    """``clip_plan`` runs in the parent of every features step: looking for weights must not cost
    torch's import. A checkpoint placed where the Hugging Face cache keeps it is found."""
    import subprocess
    import sys

    from open_clip.pretrained import get_pretrained_cfg

    repo, _ = os.path.split(get_pretrained_cfg(DEFAULT_MODEL, DEFAULT_PRETRAINED)["hf_hub"])
    home = tmp_path / f"models--{repo.replace('/', '--')}"
    snapshot = home / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "open_clip_model.safetensors").write_bytes(b"weights")
    (home / "refs").mkdir()
    (home / "refs" / "main").write_text("0" * 40)
    code = (
        "import sys\n"
        "from giflab.features.clip import cached_weights_file\n"
        f"print(cached_weights_file({DEFAULT_MODEL!r}, {DEFAULT_PRETRAINED!r}, {str(tmp_path)!r}))\n"
        "print('torch' in sys.modules, 'open_clip' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    found, imported = out.stdout.splitlines()
    assert found == str(snapshot / "open_clip_model.safetensors")
    assert imported == "False False"


@pytest.mark.parametrize(
    ("model", "tag"), [(DEFAULT_MODEL, DEFAULT_PRETRAINED), ("ViT-B-32", "openai"), ("RN50", "x")]
)
def test_the_light_table_is_open_clips_own(model, tag):
    from open_clip.pretrained import get_pretrained_cfg

    from giflab.features.clip import _light_pretrained_module

    light = _light_pretrained_module()
    assert light.get_pretrained_cfg(model, tag) == get_pretrained_cfg(model, tag)
