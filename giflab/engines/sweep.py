"""The variant matrix and one safe render: a temp output that never outlives a failure."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from giflab.engines.base import Engine, RenderResult, SourceGif, Variant

DEFAULT_LOSSY = (0, 20, 40, 60, 80, 100, 120)
DEFAULT_COLORS = (256, 128, 64, 32, 16)
DEFAULT_FRAME_KEEP = (1.0, 0.8)


def variant_matrix(
    lossy: Sequence[int] = DEFAULT_LOSSY,
    colors: Sequence[int] = DEFAULT_COLORS,
    frame_keep: Sequence[float] = DEFAULT_FRAME_KEEP,
) -> list[Variant]:
    """Every (lossy, colours, frame-keep) combination, in a fixed order (70 by default)."""
    return [Variant(int(lo), int(c), float(f)) for f in frame_keep for c in colors for lo in lossy]


def output_name(engine: Engine, variant: Variant) -> str:
    """A render's file name: engine and settings only, never the source's (possibly hostile) name."""
    suffix = {"WEBP": ".webp", "AVIF": ".avif"}.get(getattr(engine, "fmt", "GIF"), ".gif")
    return f"{engine.name}-l{variant.lossy}-c{variant.colors}-f{variant.frame_keep:g}{suffix}"


@contextlib.contextmanager
def render_variant(
    engine: Engine,
    src: Path | str | SourceGif,
    variant: Variant,
    tmp_dir: Path | str,
    timeout_s: float | None = None,
) -> Iterator[RenderResult]:
    """Render into a fresh folder under ``tmp_dir``; yield the result; remove the folder after.

    Use as ``with render_variant(...) as r: measure(r.output)``; nothing is left behind on failure.
    """
    Path(tmp_dir).mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{engine.name}-", dir=tmp_dir))
    try:
        yield engine.render(src, variant, folder / output_name(engine, variant), timeout_s)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
