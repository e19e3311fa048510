"""gifski: lossless PNG frames in, ``--quality`` from lossy; no colour-count knob.

Command (one call)::

    gifski --quiet --no-sort --quality Q --fps F --width W --height H --repeat R
        --output OUT frame00000.png frame00002.png ...

Frames: the kept frames, composited as lossless RGBA PNGs (alpha kept). Lossy mapping:
``Q = 100 - round(lossy * 0.75)`` (0 -> 100, 120 -> 10); gifski 1.7.1 has no ``--lossy-quality``.
Timing is approximated: 1.7.1 takes one ``--fps`` for all frames, set so the total duration is kept
(``F = kept frames / total kept seconds``, recorded in ``applied["fps"]``); per-frame delays that
differ are not reproduced. gifski builds its own palettes (up to 256 colours per frame), so the
requested colour count is not applied: ``applied["colors"] = None``. ``--width/--height`` are the
source size, because gifski otherwise shrinks anything larger than about 800x600. A single kept
frame is passed twice (gifski refuses one; it merges the identical pair back into one frame).
"""

from __future__ import annotations

from pathlib import Path

from giflab.engines.base import TOOLS_DIR, Engine, SourceGif, Variant, loop_count, platform_dir


def gifski_quality(lossy: int) -> int:
    """gifski ``--quality`` (1-100) for a GifLab lossy level (0-120)."""
    return max(1, 100 - round(lossy * 0.75))


class Gifski(Engine):
    name = "gifski"
    binary_name = "gifski"
    config_field = "gifski_bin"
    install_hint = "npm install --prefix tools gifski@1.7.1 (scripts/setup.sh does it)"
    install = {
        "linux": "npm install --prefix tools gifski@1.7.1",
        "darwin": "npm install --prefix tools gifski@1.7.1 (or brew install gifski)",
        "win32": "npm install --prefix tools gifski@1.7.1",
    }
    merges_identical_frames = True
    applies_colors = False

    def discover(self) -> str | None:
        exe = "gifski.exe" if platform_dir() == "windows" else "gifski"
        local = TOOLS_DIR / "node_modules" / "gifski" / "bin" / platform_dir() / exe
        return str(local) if local.exists() else super().discover()

    def command(self, binary: str, src: SourceGif, variant: Variant, out: Path, scratch: Path):
        kept, delays = src.plan(variant.frame_keep)
        fps = round(1000.0 * len(delays) / max(1, sum(delays)), 4)
        quality = gifski_quality(variant.lossy)
        loop = loop_count(src)
        argv = [binary, "--quiet", "--no-sort", "--quality", str(quality), "--fps", f"{fps:g}"]
        argv += ["--width", str(src.width), "--height", str(src.height)]
        argv += ["--repeat", str(-1 if loop is None else loop), "--output", str(out)]
        frames = [str(src.png_frames[k]) for k in kept]
        # gifski refuses a single input frame ("not enough to make an animation"); given the same
        # frame twice it merges them back into one (merges_identical_frames).
        argv += frames * 2 if len(frames) == 1 else frames
        applied = {
            "lossy": variant.lossy,
            "quality": quality,
            "colors": None,  # no colour-count knob in gifski
            "fps": fps,
            "frame_keep": variant.frame_keep,
        }
        return argv, applied
