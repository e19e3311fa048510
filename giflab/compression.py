"""One GIF through one engine over the variants it is missing: render, measure, clean up.

The source is decoded and its metric side prepared once per sweep (``SourceFrames``); each
render is decoded once, for its metrics and its frame/colour counts together. Temp files live in
a per-task folder under the data dir's ``tmp/`` and are removed whatever happens; a failed render
is a recorded ``failed`` row (with the engine's reason), never a hang.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from giflab.engines import SourceGif, Variant, get_engine
from giflab.engines.config import EngineConfig
from giflab.engines.frame_keep import frame_keep_indices
from giflab.engines.sweep import (
    DEFAULT_COLORS,
    DEFAULT_FRAME_KEEP,
    DEFAULT_LOSSY,
    output_name,
    variant_matrix,
)
from giflab.errors import GifLabError
from giflab.metrics import (
    DEFAULT_CACHE_BYTES,
    DEFAULT_MAX_FRAMES,
    SourceFrames,
    measure_render,
)
from giflab.schemas import CompressionRunV1

__all__ = [
    "DEFAULT_COLORS",
    "DEFAULT_FRAME_KEEP",
    "DEFAULT_LOSSY",
    "SweepTask",
    "longest_first",
    "sweep_gif",
    "variant_matrix",
]


@dataclass(frozen=True)
class SweepTask:
    """The unit of work for a worker: one GIF, one engine, the variants still missing."""

    sha256: str
    source: str
    engine: str
    config: EngineConfig
    variants: tuple[Variant, ...]
    tmp_dir: str
    timeout_s: float = 300.0
    max_metric_frames: int | None = DEFAULT_MAX_FRAMES
    # Memory for the source's prepared metric pyramids (see giflab.metrics.source).
    metric_cache_bytes: int = DEFAULT_CACHE_BYTES


def longest_first(tasks: Sequence[SweepTask], pixels: Mapping[str, int]) -> list[SweepTask]:
    """``tasks`` by expected cost, largest first: ``pixels`` (width x height x frames of each
    GIF, by sha256; unknown counts as 0) times the variants to render.

    Longest-processing-time-first order: the last tasks to start are the small ones, so at the
    end of a batch no worker waits long for another's one big sweep. Ties keep their order.
    """
    return sorted(tasks, key=lambda t: pixels.get(t.sha256, 0) * len(t.variants), reverse=True)


def sweep_gif(task: SweepTask) -> list[CompressionRunV1]:
    """Render and measure every variant of ``task``; one row per variant.

    An engine without a colour knob (``applies_colors`` false) renders each (lossy, frame-keep)
    once; the other colour counts get that render's row under their own ``colors``.
    """
    engine = get_engine(task.engine, task.config)
    version = engine.available().version
    Path(task.tmp_dir).mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"{task.engine}-{task.sha256[:12]}-", dir=task.tmp_dir))
    rows = []
    # (lossy, frame_keep) -> the row of its render, for engines that ignore the colour count.
    rendered: dict[tuple[int, float], CompressionRunV1] = {}
    try:
        src = SourceGif(task.source, workdir)
        source: SourceFrames | GifLabError
        try:
            source = SourceFrames.read(
                src.path, task.max_metric_frames, cache_bytes=task.metric_cache_bytes
            )
        except GifLabError as e:
            source = e  # every render then fails with this reason, as a per-render decode did
        for v in task.variants:
            earlier = rendered.get((v.lossy, v.frame_keep))
            if earlier is not None:
                rows.append(earlier.model_copy(update={"colors": v.colors}))
                continue
            base = dict(
                gif_sha=task.sha256,
                engine=task.engine,
                engine_version=version,
                lossy=v.lossy,
                colors=v.colors,
                frame_keep=v.frame_keep,
            )
            out = workdir / output_name(engine, v)
            kept_indices = frame_keep_indices(src.n_frames, v.frame_keep)
            kept = len(kept_indices)
            try:
                result = engine.render(src, v, out, task.timeout_s)
                if isinstance(source, GifLabError):
                    raise source
                measured, metrics = measure_render(source, out, kept_indices)
                rows.append(
                    CompressionRunV1(
                        **base,
                        status="ok",
                        kilobytes=round(out.stat().st_size / 1024.0, 3),
                        render_ms=result.render_ms,
                        kept_frames=kept,
                        render_frames=measured["render_frames"],
                        render_colors=measured["render_colors"],
                        applied=result.applied,
                        argv=[Path(a).name if Path(a).is_absolute() else a for a in result.argv],
                        **metrics,
                    )
                )
            except GifLabError as e:
                reason = getattr(e, "reason", str(e))
                stderr = getattr(e, "stderr", "")
                rows.append(
                    CompressionRunV1(
                        **base,
                        status="failed",
                        error=f"{reason} {stderr[-500:]}".strip(),
                        kept_frames=kept,
                        applied={},
                        argv=[],
                    )
                )
            finally:
                for leftover in workdir.glob(out.stem + "*"):
                    leftover.unlink(missing_ok=True)
            if not engine.applies_colors:
                rendered[(v.lossy, v.frame_keep)] = rows[-1]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return rows
