"""Our SSIM against scikit-image's on real corpus frames: agreement and speed. Run by hand.

    python benchmarks/bench_ssim.py [--pairs 40] [--corpus DIR]

For each GIF, frame 0 is compared with a later frame and with a 6-colour quantisation of itself,
on BT.601 luma; prints the max |ours - skimage| and the speed ratio, and the time of a whole
``compare_gifs`` frame pair at the largest size seen.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage.metrics import structural_similarity

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from giflab.frames import flatten, iter_frames  # noqa: E402
from giflab.metrics.structural import luma, ssim  # noqa: E402
from tests.conftest import good_corpus_gifs  # noqa: E402


def frame_pairs(gifs: list[Path], limit: int):
    """(name, luma a, luma b) pairs from real GIFs of at least 16 px on each side."""
    for p in gifs:
        with Image.open(p) as im:
            if min(im.size) < 16 or getattr(im, "n_frames", 1) < 2:
                continue
        frames = [flatten(f.rgba) for f in itertools.islice(iter_frames(p), 0, 3, 2)]
        first, later = frames[0], frames[-1]
        quant = np.asarray(Image.fromarray(first).quantize(6).convert("RGB"))
        yield p.name, luma(first), luma(later)
        yield p.name + " (quantised)", luma(first), luma(quant)
        limit -= 2
        if limit <= 0:
            return


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=40)
    ap.add_argument("--corpus", type=Path, default=None)
    args = ap.parse_args()
    gifs = sorted(args.corpus.glob("*.gif")) if args.corpus else good_corpus_gifs()
    worst, ours_s, ref_s, pixels = 0.0, 0.0, 0.0, 0
    for name, a, b in frame_pairs(gifs, args.pairs):
        t0 = time.perf_counter()
        mine = ssim(a, b)
        t1 = time.perf_counter()
        ref = structural_similarity(
            a.astype(np.float64),
            b.astype(np.float64),
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=255,
        )
        t2 = time.perf_counter()
        ours_s, ref_s, pixels = ours_s + (t1 - t0), ref_s + (t2 - t1), pixels + a.size
        worst = max(worst, abs(mine - ref))
        print(f"{abs(mine - ref):.2e}  ours {mine:.6f}  skimage {ref:.6f}  {a.shape}  {name[:70]}")
    print(f"\nmax |ours - skimage| = {worst:.3e}")
    print(
        f"time: ours {ours_s * 1e3:.1f} ms, skimage {ref_s * 1e3:.1f} ms "
        f"({ref_s / max(ours_s, 1e-9):.1f}x faster) over {pixels / 1e6:.1f} Mpx"
    )


if __name__ == "__main__":
    main()
