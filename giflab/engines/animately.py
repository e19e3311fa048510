"""Animately (proprietary; binary from ``GIFLAB_ANIMATELY_BIN`` / ``EngineConfig.animately_bin``).

Three engines share the binary, each one call::

    animately-standard:  animately --input SRC --output OUT --lossy N [--colors C]
                             [--reduce R --delay MS] --loops L
    animately-hard:      animately --input SRC --output OUT --hard --lossy N [--colors C]
                             [--reduce R --delay MS] --loops L
    animately-advanced:  animately --advanced-lossy CONFIG.json --output OUT

``--colors`` is omitted at 256 (Animately keeps the source palette). With ``--reduce`` Animately
drops frames itself and ``--delay`` is the mean kept delay, so per-frame timing is approximated
(recorded in ``applied``). The advanced JSON holds lossy, colours, loops and the kept frames as
lossless PNGs with their own delays (``kept_delays``), so selection and timing are exact there.
``L`` is the source's NETSCAPE loop count (0 = forever); a source without one gets 1.
"""

from __future__ import annotations

import json
from pathlib import Path

from giflab.engines.base import Engine, SourceGif, Variant, loop_count


class AnimatelyStandard(Engine):
    name = "animately-standard"
    binary_name = "animately"
    config_field = "animately_bin"
    install_hint = "Animately is proprietary and not bundled"
    hard = False

    def discover(self) -> str | None:
        return None  # never guess a proprietary binary from PATH: it must be configured

    def not_found_reason(self) -> str:
        if self._binary:
            return f"{self._binary} is not an executable; set GIFLAB_ANIMATELY_BIN to the animately binary"
        return "set GIFLAB_ANIMATELY_BIN to the animately binary (proprietary, not bundled)"

    def command(self, binary: str, src: SourceGif, variant: Variant, out: Path, scratch: Path):
        argv = [binary, "--input", str(src.path), "--output", str(out)]
        if self.hard:
            argv.append("--hard")
        argv += ["--lossy", str(variant.lossy)]
        applied: dict = {"lossy": variant.lossy, "hard": self.hard, "colors": None}
        if variant.colors < 256:
            argv += ["--colors", str(variant.colors)]
            applied["colors"] = variant.colors
        applied["frame_keep"] = variant.frame_keep
        if variant.frame_keep < 1:
            _, delays = src.plan(variant.frame_keep)
            delay = round(sum(delays) / len(delays))
            argv += ["--reduce", f"{variant.frame_keep:g}", "--delay", str(delay)]
            applied |= {"delay_ms": delay, "frames_chosen_by": "animately"}
        loop = loop_count(src)
        argv += ["--loops", str(1 if loop is None else loop)]
        return argv, applied


class AnimatelyHard(AnimatelyStandard):
    name = "animately-hard"
    hard = True


class AnimatelyAdvanced(AnimatelyStandard):
    name = "animately-advanced"

    def command(self, binary: str, src: SourceGif, variant: Variant, out: Path, scratch: Path):
        kept, delays = src.plan(variant.frame_keep)
        loop = loop_count(src)
        config = {
            "lossy": variant.lossy,
            "colors": variant.colors,
            "loops": 1 if loop is None else loop,
            "frames": [
                {"png": str(src.png_frames[k]), "delay": d}
                for k, d in zip(kept, delays, strict=True)
            ],
        }
        config_path = scratch / "advanced.json"
        config_path.write_text(json.dumps(config, indent=1), encoding="utf-8")
        argv = [binary, "--advanced-lossy", str(config_path), "--output", str(out)]
        applied = {
            "lossy": variant.lossy,
            "colors": variant.colors,
            "frame_keep": variant.frame_keep,
        }
        return argv, applied
