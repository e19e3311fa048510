"""ImageMagick: ``-coalesce``, frame selection, per-frame delays, lossy as ``-fuzz``, ``-colors``.

Command (one call, run in a scratch folder with the source linked as ``src.gif``)::

    convert -limit memory M -limit map M -limit area A -limit disk D gif:src.gif -coalesce
        [( -clone i -set delay D ) ... -delete 0-(n-1)]      # kept frames, each with its delay
        [-fuzz F%] -layers Optimize -dither MODE|+dither -colors C gif:out.gif

Lossy mapping: ``F = lossy / 6`` percent (0 -> exact, 120 -> 20%). ``-layers Optimize`` crops each
frame to what changed and makes pixels within F% of the previous frame transparent: smaller
rectangles and long LZW runs.
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
# ImageMagick 6's dithering frees and re-allocates large buffers per frame; with glibc's
# defaults each one is a fresh mmap whose munmap costs ~85 ms of kernel time per frame
# (a 38-frame 160x90 GIF: 3.7 s, 3.3 s of it in the kernel). Keeping them in the heap gives
# byte-identical output in 0.6 s. Other C libraries ignore these variables.
GLIBC_MALLOC_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(256 * 2**20),
    "MALLOC_TRIM_THRESHOLD_": str(2**30),
}
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
    install = {
        "linux": "sudo apt-get install imagemagick",
        "darwin": "brew install imagemagick",
        "win32": "choco install imagemagick (or run GifLab in WSL)",
    }

    def discover(self) -> str | None:
        # Prefer ImageMagick 7's ``magick``, then the system's own ``convert``: an earlier
        # ``convert`` on PATH may be another program (or a stand-in script).
        for candidate in ("magick", "/usr/bin/convert", "/opt/homebrew/bin/magick"):
            found = shutil.which(candidate)
            if found:
                return found
        return shutil.which("convert")

    def environment(self) -> dict:
        return os.environ | {"MAGICK_CONFIGURE_PATH": str(POLICY_DIR), **GLIBC_MALLOC_ENV}

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
        argv += ["-layers", "Optimize", *DITHER_ARGS[dither]]
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
