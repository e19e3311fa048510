"""gifsicle: ``--lossy=N``, ``--colors C``, ``#i`` frame selection with per-frame ``-d``, ``-O3``.

Command (one call)::

    gifsicle --no-warnings -O3 --lossy=N [--colors C] [--unoptimize] -o OUT SRC [-dD #i ...]

``--colors`` is left out when C is 256 and the file's colour tables hold at most 256 colours
(asking for 256 would only rebuild the palette). When frames are dropped, ``--unoptimize``
recomposes each frame first (a kept frame may draw on a dropped one) and each kept frame gets its
own ``-d`` (centiseconds) from ``kept_delays``. ``-O2``/``-O3`` fold identical consecutive frames
into one with the summed delay, so a render can hold fewer frames than were kept.
"""

from __future__ import annotations

from pathlib import Path

from giflab.engines.base import Engine, SourceGif, Variant


class Gifsicle(Engine):
    name = "gifsicle"
    binary_name = "gifsicle"
    config_field = "gifsicle_bin"
    install_hint = "apt install gifsicle / brew install gifsicle"
    install = {
        "linux": "sudo apt-get install gifsicle",
        "darwin": "brew install gifsicle",
        "win32": "choco install gifsicle (or run GifLab in WSL)",
    }
    merges_identical_frames = True

    def command(self, binary: str, src: SourceGif, variant: Variant, out: Path, scratch: Path):
        argv = [binary, "--no-warnings", "-O3", f"--lossy={variant.lossy}"]
        colors = None
        if variant.colors < 256 or src.palette_colors > 256:
            colors = variant.colors
            argv += ["--colors", str(colors)]
        dropping = variant.frame_keep < 1
        if dropping:
            argv.append("--unoptimize")
        argv += ["-o", str(out), str(src.path)]
        if dropping:
            kept, delays = src.plan(variant.frame_keep)
            for index, delay in zip(kept, delays, strict=True):
                argv += [f"-d{delay // 10}", f"#{index}"]
        applied = {
            "lossy": variant.lossy,
            "colors": colors,  # None: palette kept as is (already <= 256 colours)
            "frame_keep": variant.frame_keep,
            "optimize": "O3",
        }
        return argv, applied
