"""ImageMagick: ``-coalesce``, frame selection, per-frame delays, lossy as ``-fuzz``, ``-colors``.

Command (one call, run in a scratch folder with the source linked as ``src.gif``)::

    convert -limit memory M -limit map M -limit area A -limit disk D gif:src.gif -coalesce
        [( -clone i -set delay D ) ... -delete 0-(n-1)]      # kept frames, each with its delay
        [-fuzz F% ] -layers OptimizeTransparency -dither MODE|+dither -colors C gif:out.gif

Lossy mapping: ``F = lossy / 6`` percent (0 -> exact, 120 -> 20%). With ``OptimizeTransparency``
pixels within F% of the previous frame become transparent, giving long LZW runs and smaller files.
It is temporal only: frames that share no static pixels (sprite cut-outs) are unchanged by it.
Colours are quantised once, last, so the transparent index is part of the C-colour palette.
Debian's policy caps memory at 256 MiB and area at 128 MP and ``-limit`` can only lower a policy,
so ``MAGICK_CONFIGURE_PATH`` points at ``imagemagick_policy/`` (the ceilings) and ``-limit``
sets the configured values below them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from giflab.engines.base import Engine, SourceGif, Variant

FUZZ_PER_LOSSY = 1 / 6
POLICY_DIR = Path(__file__).with_name("imagemagick_policy")
DITHER_ARGS = {
    "none": ["+dither"],
    "riemersma": ["-dither", "Riemersma"],
    "floyd-steinberg": ["-dither", "FloydSteinberg"],
}


class ImageMagick(Engine):
    name = "imagemagick"
    binary_name = "convert"
    config_field = "imagemagick_bin"
    version_args = ["-version"]
    install_hint = "apt install imagemagick / brew install imagemagick"

    def discover(self) -> str | None:
        # Prefer ImageMagick 7's ``magick``, then the system's own ``convert``: an earlier
        # ``convert`` on PATH may be another program (or a stand-in script).
        for candidate in ("magick", "/usr/bin/convert", "/opt/homebrew/bin/magick"):
            found = shutil.which(candidate)
            if found:
                return found
        return shutil.which("convert")

    def environment(self) -> dict:
        return os.environ | {"MAGICK_CONFIGURE_PATH": str(POLICY_DIR)}

    def command(self, binary: str, src: SourceGif, variant: Variant, out: Path, scratch: Path):
        # ImageMagick reads "name[0]", "fmt:name" and "%d" in file names, so it only ever sees
        # two fixed names in its working folder; finish() moves the result into place.
        (scratch / "src.gif").symlink_to(src.path)
        argv = [binary]
        for resource, value in self.config.imagemagick_limits.items():
            argv += ["-limit", resource, value]
        argv += ["gif:src.gif", "-coalesce"]
        if variant.frame_keep < 1:
            kept, delays = src.plan(variant.frame_keep)
            for index, delay in zip(kept, delays, strict=True):
                argv += ["(", "-clone", str(index), "-set", "delay", str(delay // 10), ")"]
            argv += ["-delete", f"0-{src.n_frames - 1}"]
        fuzz = round(variant.lossy * FUZZ_PER_LOSSY, 3)
        if fuzz > 0:
            argv += ["-fuzz", f"{fuzz:g}%"]
        dither = self.config.imagemagick_dither
        argv += ["-layers", "OptimizeTransparency", *DITHER_ARGS[dither]]
        argv += ["-colors", str(variant.colors), "gif:out.gif"]
        applied = {
            "lossy": variant.lossy,
            "fuzz_percent": fuzz,
            "colors": variant.colors,
            "dither": dither,
            "frame_keep": variant.frame_keep,
        }
        return argv, applied

    def finish(self, out: Path, scratch: Path) -> None:
        produced = scratch / "out.gif"
        if produced.is_file():
            os.replace(produced, out)
