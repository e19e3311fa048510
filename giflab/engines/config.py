"""Engine configuration: binary paths, timeout and per-engine options, read once from the environment.

Each binary field defaults to its ``GIFLAB_<ENGINE>_BIN`` variable; ``None`` means the engine
discovers its binary (PATH, or the repository's ``tools/`` folder for gifski).
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, Field

BINARY_ENV = {
    "gifsicle_bin": "GIFLAB_GIFSICLE_BIN",
    "imagemagick_bin": "GIFLAB_IMAGEMAGICK_BIN",
    "ffmpeg_bin": "GIFLAB_FFMPEG_BIN",
    "gifski_bin": "GIFLAB_GIFSKI_BIN",
    "animately_bin": "GIFLAB_ANIMATELY_BIN",
}


def _env(field: str):
    return Field(default_factory=lambda: os.environ.get(BINARY_ENV[field]) or None)


class EngineConfig(BaseModel):
    """Where each engine's binary is, how long a render may take, and the dithering modes."""

    gifsicle_bin: str | None = _env("gifsicle_bin")
    imagemagick_bin: str | None = _env("imagemagick_bin")
    ffmpeg_bin: str | None = _env("ffmpeg_bin")
    gifski_bin: str | None = _env("gifski_bin")
    animately_bin: str | None = _env("animately_bin")
    timeout_s: float = Field(300.0, gt=0)
    # Address-space cap of each engine process (Linux; None: no cap). A render that needs more
    # fails with a recorded reason instead of pushing the machine into swap.
    memory_limit_mb: int | None = Field(8192, gt=0)
    imagemagick_dither: Literal["none", "riemersma", "floyd-steinberg"] = "floyd-steinberg"
    # ImageMagick resource limits (-limit), above Debian's 256 MiB / 128 MP policy defaults.
    imagemagick_limits: dict[str, str] = Field(
        default_factory=lambda: {"memory": "2GiB", "map": "4GiB", "area": "2GP", "disk": "8GiB"}
    )
    ffmpeg_dither: Literal[
        "none", "bayer", "heckbert", "floyd_steinberg", "sierra2", "sierra2_4a"
    ] = "sierra2_4a"

    def binary(self, field: str) -> str | None:
        """The configured path of binary ``field`` (e.g. ``"gifsicle_bin"``), or None."""
        return getattr(self, field)
