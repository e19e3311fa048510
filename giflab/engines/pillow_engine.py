"""Tier-2 engines through Pillow (not in the default sweep): GIF, WebP and AVIF outputs.

Pillow has no lossy-LZW knob, so for ``pillow`` lossy is recorded as not applied; for WebP and
AVIF lossy maps to ``quality = 100 - round(lossy * 0.75)``.
"""

from __future__ import annotations

import time
from pathlib import Path

from PIL import Image, features

from giflab.engines.base import Engine, EngineStatus, RenderResult, SourceGif, Variant
from giflab.errors import EngineError
from giflab.frames import iter_frames


class PillowGif(Engine):
    name = "pillow"
    binary_name = "pillow"
    config_field = ""
    fmt = "GIF"
    merges_identical_frames = True

    def binary(self) -> str | None:
        return "PIL"  # in-process: no executable

    def available(self) -> EngineStatus:
        return EngineStatus(self.name, True, "PIL", Image.__version__)

    def command(self, binary, src, variant, out, scratch):  # pragma: no cover - in-process
        raise NotImplementedError

    def _save(
        self, frames: list[Image.Image], delays: list[int], variant: Variant, out: Path, loop
    ) -> dict:
        quantized = [
            f.convert("RGB").quantize(colors=variant.colors, method=Image.Quantize.MEDIANCUT)
            for f in frames
        ]
        quantized[0].save(
            out,
            format="GIF",
            save_all=True,
            append_images=quantized[1:],
            duration=delays,
            loop=loop or 0,
            optimize=True,
        )
        # One quantisation per frame; Pillow has no lossy-LZW knob, so lossy is not applied.
        return {"colors": variant.colors, "lossy": None, "frame_keep": variant.frame_keep}

    def _render(
        self, src: SourceGif, variant: Variant, out: Path, timeout_s: float, scratch: Path
    ) -> RenderResult:
        # In-process: no timeout applies (tier-2 only, not in the default sweep).
        kept, delays = src.plan(variant.frame_keep)
        start = time.perf_counter()
        frames = [Image.fromarray(f.rgba, "RGBA") for f in iter_frames(src.path, indices=kept)]
        try:
            applied = self._save(frames, delays, variant, Path(out), src.loop)
        except (OSError, ValueError) as e:
            raise EngineError(src.path, self.name, str(e)) from e
        elapsed = int(round((time.perf_counter() - start) * 1000))
        return RenderResult(
            self.name, variant, Path(out), elapsed, ["PIL.Image.save", self.fmt], kept, applied
        )


class PillowWebp(PillowGif):
    name = "pillow-webp"
    fmt = "WEBP"
    applies_colors = False

    def available(self) -> EngineStatus:
        ok = features.check("webp")
        return EngineStatus(
            self.name, ok, "PIL", Image.__version__, None if ok else "Pillow built without WebP"
        )

    def _save(self, frames, delays, variant, out, loop) -> dict:
        quality = max(1, 100 - round(variant.lossy * 0.75))
        frames[0].save(
            out,
            format=self.fmt,
            save_all=True,
            append_images=frames[1:],
            duration=delays,
            loop=loop or 0,
            quality=quality,
        )
        return {"quality": quality, "colors": None, "frame_keep": variant.frame_keep}


class PillowAvif(PillowWebp):
    name = "pillow-avif"
    fmt = "AVIF"

    def available(self) -> EngineStatus:
        ok = features.check("avif") if "avif" in features.get_supported_modules() else False
        return EngineStatus(
            self.name, ok, "PIL", Image.__version__, None if ok else "Pillow built without AVIF"
        )
