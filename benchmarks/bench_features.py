"""Time feature extraction per family on the corpus (run by hand: ``python benchmarks/bench_features.py``).

Prints, per family, mean seconds per GIF and per 100 source frames, plus CLIP time per GIF with a
tiny random-weight model (the load path of real weights), with the production architecture
(ViT-B-32) on random weights saved to a temp file — the same computation as the real weights,
which cannot be downloaded here — and with real ViT-B-32 weights if cached.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from conftest import good_corpus_gifs  # noqa: E402

from giflab.features import ClipScorer, ClipUnavailable  # noqa: E402
from giflab.features.clip import DEFAULT_MODEL, DEFAULT_PRETRAINED, cached_weights_file  # noqa: E402
from giflab.features.compressibility import compressibility_features  # noqa: E402
from giflab.features.sampling import sample_gif  # noqa: E402
from giflab.features.spatial import spatial_features  # noqa: E402
from giflab.features.temporal import temporal_features  # noqa: E402

TINY_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def tiny_scorer(tmp: Path) -> ClipScorer:
    """A ClipScorer over a random-weight tiny open_clip model saved to ``tmp``."""
    import open_clip
    import torch

    (tmp / "giflab-tiny-clip.json").write_text(json.dumps(TINY_CONFIG))
    open_clip.add_model_config(tmp / "giflab-tiny-clip.json")
    torch.manual_seed(0)
    torch.save(open_clip.create_model("giflab-tiny-clip").state_dict(), tmp / "tiny.pt")
    return ClipScorer(model_name="giflab-tiny-clip", pretrained=str(tmp / "tiny.pt")).load()


def random_production_scorer(tmp: Path) -> ClipScorer:
    """A ClipScorer over ``DEFAULT_MODEL`` (ViT-B-32) with random weights saved to ``tmp``:
    what scoring costs with the real model, whose weights are only a download away."""
    import open_clip
    import torch

    torch.manual_seed(0)
    weights = tmp / "vit-b-32-random.pt"
    torch.save(open_clip.create_model(DEFAULT_MODEL).state_dict(), weights)
    return ClipScorer(model_name=DEFAULT_MODEL, pretrained=str(weights)).load()


def main() -> None:
    """Run every family on every corpus GIF and print the timing table."""
    gifs = good_corpus_gifs()
    families = {
        "spatial": spatial_features,
        "temporal": temporal_features,
        "compressibility": compressibility_features,
    }
    names = ["decode+sample", *families, "clip_tiny", "clip_vit_b_32_random", "clip_real"]
    totals = dict.fromkeys(names, 0.0)
    frames = 0
    with tempfile.TemporaryDirectory() as tmp:
        scorers = {
            "clip_tiny": tiny_scorer(Path(tmp)),
            "clip_vit_b_32_random": random_production_scorer(Path(tmp)),
        }
        if cached_weights_file(DEFAULT_MODEL, DEFAULT_PRETRAINED, None) is not None:
            scorers["clip_real"] = ClipScorer().load()
        for path in gifs:
            t = time.perf_counter()
            sample = sample_gif(path)
            totals["decode+sample"] += time.perf_counter() - t
            frames += sample.n_frames
            for name, func in families.items():
                t = time.perf_counter()
                func(sample)
                totals[name] += time.perf_counter() - t
            for name, scorer in scorers.items():
                t = time.perf_counter()
                try:
                    scorer.score(sample.clip_images())
                except ClipUnavailable:
                    pass
                totals[name] += time.perf_counter() - t
    print(f"{len(gifs)} GIFs, {frames} frames")
    print(f"{'family':22s} {'ms/GIF':>9s} {'ms/100 frames':>14s}")
    for name, secs in totals.items():
        if name == "clip_real" and "clip_real" not in scorers:
            print(f"{name:22s} skipped: no cached weights")
            continue
        print(f"{name:22s} {1000 * secs / len(gifs):9.1f} {100_000 * secs / frames:14.1f}")


if __name__ == "__main__":
    main()
