"""One GIF through one engine over the variants it is missing: render, measure, clean up.

Temp files live in a per-task folder under the data dir's ``tmp/`` and are removed whatever
happens; a failed render is a recorded ``failed`` row (with the engine's reason), never a hang.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from giflab.engines import SourceGif, Variant, get_engine
from giflab.engines.config import EngineConfig
from giflab.engines.frame_keep import frame_keep_indices
from giflab.errors import GifLabError
from giflab.meta import read_metadata
from giflab.metrics import DEFAULT_MAX_FRAMES, compare_gifs
from giflab.schemas import CompressionRunV1

DEFAULT_LOSSY = (0, 20, 40, 60, 80, 100, 120)
DEFAULT_COLORS = (256, 128, 64, 32, 16)
DEFAULT_FRAME_KEEP = (1.0, 0.8)


def variant_matrix(
    lossy=DEFAULT_LOSSY, colors=DEFAULT_COLORS, frame_keep=DEFAULT_FRAME_KEEP
) -> list[Variant]:
    """Every (lossy, colours, frame-keep) combination, in a fixed order."""
    return [Variant(int(lo), int(c), float(f)) for f in frame_keep for c in colors for lo in lossy]


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


def sweep_gif(task: SweepTask) -> list[CompressionRunV1]:
    """Render and measure every variant of ``task``; one row per variant."""
    engine = get_engine(task.engine, task.config)
    version = engine.available().version
    Path(task.tmp_dir).mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"{task.engine}-{task.sha256[:12]}-", dir=task.tmp_dir))
    rows = []
    try:
        src = SourceGif(task.source, workdir)
        for v in task.variants:
            base = dict(
                gif_sha=task.sha256,
                engine=task.engine,
                engine_version=version,
                lossy=v.lossy,
                colors=v.colors,
                frame_keep=v.frame_keep,
            )
            out = workdir / f"l{v.lossy}-c{v.colors}-f{v.frame_keep:g}.gif"
            kept = len(frame_keep_indices(src.n_frames, v.frame_keep))
            try:
                result = engine.render(src, v, out, task.timeout_s)
                measured = read_metadata(out) if out.suffix == ".gif" else {}
                metrics = compare_gifs(src.path, out, max_frames=task.max_metric_frames)
                rows.append(
                    CompressionRunV1(
                        **base,
                        status="ok",
                        kilobytes=round(out.stat().st_size / 1024.0, 3),
                        render_ms=result.render_ms,
                        kept_frames=kept,
                        render_frames=measured.get("n_frames"),
                        render_colors=measured.get("n_colors"),
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
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return rows
