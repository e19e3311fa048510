"""Metric cost in a sweep: fresh decode per render against a source prepared once. Run by hand.

    python benchmarks/bench_metrics.py [--variants 6] [--engine gifsicle] [GIF ...]

For each GIF (default: the 800x400, 557-frame lottie Example2 and a small one), renders N
variants spread over the default 70-variant matrix, then times, all in this one run:

- the render-only loop (the engine command lines, nothing else);
- metrics with a fresh decode per render: ``compare_gifs(path, ...)`` + ``describe_render``;
- metrics on a prepared source: ``SourceFrames.read`` once + ``measure_render`` per render;
- a bare loop: ``SourceFrames.read``, then per variant ``engine.render`` + ``measure_render``;
- ``sweep_gif`` itself over the same variants (the whole pipeline, renders included);

and prints per-render times, their ratios, a 70-variant extrapolation, and a per-stage
breakdown of ``measure_render`` (decode, colour count, SSIM, MS-SSIM, SSIMULACRA2, others).
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import giflab.metrics as metrics  # noqa: E402
from giflab.compression import SweepTask, sweep_gif  # noqa: E402
from giflab.engines import (  # noqa: E402
    EngineConfig,
    SourceGif,
    frame_keep_indices,
    get_engine,
    variant_matrix,
)
from giflab.frames import iter_frames  # noqa: E402
from giflab.metrics import SourceFrames, compare_gifs, describe_render, measure_render  # noqa: E402
from giflab.metrics.align import RENDER_FORMATS  # noqa: E402
from giflab.metrics.color import ColorCounter  # noqa: E402
from giflab.metrics.structural import ssim_against  # noqa: E402
from tests.conftest import corpus_dir  # noqa: E402

DEFAULT_GIFS = (
    "lottie-android__gifs__Example2.gif",
    "raylib__examples__textures__resources__scarfy_run.gif",
)
SWEEP = 70  # variants of the default matrix
# The names measure_render calls through the giflab.metrics namespace, timed per stage.
STAGES = {
    "ssim_against": "SSIM + MS-SSIM",
    "ssimulacra2_against": "SSIMULACRA2",
    "gmsd_against": "others",
    "mse": "others",
    "color_histogram": "others",
    "hellinger": "others",
    "edge_map": "others",
    "edge_overlap": "others",
    "visibility_error": "others",
    "temporal_difference": "others",
    "flatten": "others",
    "luma": "others",
    "fit_to": "others",
}


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def stage_breakdown(source: SourceFrames, render: Path, kept: list[int]) -> dict[str, float]:
    """Seconds per stage of one ``measure_render`` call (wrapping the functions it calls)."""
    spent: dict[str, float] = defaultdict(float)
    originals = {name: getattr(metrics, name) for name in STAGES}

    def wrap(name: str, fn: Callable) -> Callable:
        def inner(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[STAGES[name]] += time.perf_counter() - t0

        return inner

    for name, fn in originals.items():
        setattr(metrics, name, wrap(name, fn))
    try:
        total = timed(lambda: measure_render(source, render, kept))
    finally:
        for name, fn in originals.items():
            setattr(metrics, name, fn)
    # SSIM alone (the first scale) against the MS-SSIM scales, by a second timing of SSIM only.
    for frame, shown in metrics.paired_with_render(source.frames, render):
        b_l = metrics.luma(metrics.flatten(metrics.fit_to(shown.rgba, frame.rgba.shape)))
        spent["SSIM"] += timed(lambda: ssim_against(frame.ssim_levels()[:1], b_l))  # noqa: B023
    spent["MS-SSIM (extra scales)"] = spent.pop("SSIM + MS-SSIM") - spent["SSIM"]
    spent["decode render"] = timed(
        lambda: sum(1 for _ in iter_frames(render, None, formats=RENDER_FORMATS))
    )
    counter = ColorCounter()
    frames = list(iter_frames(render, None, formats=RENDER_FORMATS))
    spent["count colours"] = timed(lambda: [counter.add(f.rgba) for f in frames])
    spent["total"] = total
    return dict(spent)


def bench_gif(path: Path, engine_name: str, n_variants: int, max_frames: int, tmp: Path) -> None:
    engine = get_engine(engine_name, EngineConfig())
    matrix = variant_matrix()
    variants = [matrix[i * len(matrix) // n_variants] for i in range(n_variants)]
    src = SourceGif(path, tmp)
    print(
        f"\n{path.name}: {src.width}x{src.height}, {src.n_frames} frames; {engine_name}, ", end=""
    )
    print(f"{len(variants)} variants, max_frames={max_frames}")
    renders, render_s = [], 0.0
    for k, v in enumerate(variants):
        out = tmp / f"r{k}.gif"
        render_s += timed(lambda: engine.render(src, v, out))  # noqa: B023
        renders.append((out, frame_keep_indices(src.n_frames, v.frame_keep)))

    def fresh() -> None:
        for out, kept in renders:
            describe_render(out)
            compare_gifs(path, out, kept, max_frames=max_frames)

    fresh_s = timed(fresh)
    prep_s = timed(lambda: SourceFrames.read(path, max_frames))
    source = SourceFrames.read(path, max_frames)
    prepared_s = timed(lambda: [measure_render(source, out, kept) for out, kept in renders])

    def bare_loop() -> None:
        # What sweep_gif does, without the pipeline around it: prepare, then render + measure.
        prepared = SourceFrames.read(path, max_frames)
        for k, v in enumerate(variants):
            out = tmp / f"bare{k}.gif"
            engine.render(src, v, out)
            measure_render(prepared, out, frame_keep_indices(src.n_frames, v.frame_keep))

    task = SweepTask("0" * 64, str(path), engine_name, EngineConfig(), tuple(variants), str(tmp))
    bare_s = timed(bare_loop)
    sweep_s = timed(lambda: sweep_gif(task))

    n = len(variants)
    print(f"  source prepared once: {prep_s:.2f} s, {source.cached_bytes / 2**20:.0f} MiB kept")
    print(f"  per render: engine {render_s / n:.3f} s | metrics, fresh decode {fresh_s / n:.3f} s")
    print(f"              | metrics, prepared source {prepared_s / n:.3f} s")
    print(f"  metrics speedup per render: {fresh_s / prepared_s:.2f}x")
    old_70 = SWEEP * (render_s + fresh_s) / n
    new_70 = SWEEP * (render_s + prepared_s) / n + prep_s
    print(f"  {SWEEP}-variant sweep (extrapolated): fresh {old_70:.0f} s, prepared {new_70:.0f} s ")
    print(
        f"      -> {old_70 / new_70:.2f}x faster; metrics / engine = {(new_70 / (SWEEP * render_s / n) - 1):.2f}"
    )
    print(f"  sweep_gif over the {n}: {sweep_s:.2f} s = {sweep_s / bare_s:.3f} x the bare loop ")
    print(f"      (SourceFrames.read, then engine.render + measure_render each: {bare_s:.2f} s)")
    out, kept = renders[n // 2]
    stages = stage_breakdown(source, out, kept)
    total = stages.pop("total")
    print(f"  stages of one measure_render ({out.name}, {total:.3f} s):")
    accounted = 0.0
    for name in ("decode render", "count colours", "SSIM", "MS-SSIM (extra scales)"):
        print(f"      {name:24s} {stages[name]:.3f} s")
        accounted += stages[name]
    for name in ("SSIMULACRA2", "others"):
        print(f"      {name:24s} {stages[name]:.3f} s")
        accounted += stages[name]
    print(f"      {'(rest: alignment, Python)':24s} {max(0.0, total - accounted):.3f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("gifs", nargs="*", type=Path, help="GIF files (default: two corpus GIFs)")
    ap.add_argument("--variants", type=int, default=6)
    ap.add_argument("--engine", default="gifsicle")
    ap.add_argument("--max-frames", type=int, default=metrics.DEFAULT_MAX_FRAMES)
    args = ap.parse_args()
    gifs = args.gifs or [corpus_dir() / name for name in DEFAULT_GIFS]
    for path in gifs:
        # A fresh process per GIF: memory a previous GIF left behind slows every engine start
        # (fork copies the page tables), which would bias the next GIF's engine times.
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            pool.submit(bench_one, path, args.engine, args.variants, args.max_frames).result()


def bench_one(path: Path, engine: str, n_variants: int, max_frames: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        bench_gif(path, engine, n_variants, max_frames, Path(tmp))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
