"""Settings: one data directory holds all state; everything else is derived from it.

Read once (CLI flags > environment > defaults) and passed down explicitly.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field

from giflab.frames import DecodeLimits

DATA_DIR_ENV = "GIFLAB_DATA_DIR"
# Dagster instance storage in PostgreSQL instead of SQLite files (docs/scale-out.md).
POSTGRES_URL_ENV = "GIFLAB_DAGSTER_POSTGRES_URL"


def default_data_dir() -> Path:
    """The data directory: ``$GIFLAB_DATA_DIR`` or ``./data``, made absolute."""
    return Path(os.environ.get(DATA_DIR_ENV) or "data").expanduser().resolve()


class Settings(BaseModel):
    """Where GifLab keeps its state, and the bounds it applies to input files."""

    data_dir: Path = Field(default_factory=default_data_dir)
    raw_dir: Path | None = None
    fail_dir: Path | None = None
    # A decompression-bomb bound: declared width x height x frames above this is refused.
    max_total_pixels: int = 2_000_000_000
    # Per frame (Pillow's own bomb check uses this too).
    max_frame_pixels: int = 100_000_000
    max_frames: int = 20_000

    def model_post_init(self, __context: object) -> None:
        self.data_dir = Path(self.data_dir).expanduser().resolve()
        if self.raw_dir is not None:
            self.raw_dir = Path(self.raw_dir).expanduser().resolve()
        if self.fail_dir is not None:
            self.fail_dir = Path(self.fail_dir).expanduser().resolve()

    @property
    def raw(self) -> Path:
        return self.raw_dir or self.data_dir / "raw"

    @property
    def bad_dir(self) -> Path:
        return self.fail_dir or self.data_dir / "bad_gifs"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "giflab.db"

    @property
    def dagster_home(self) -> Path:
        return self.data_dir / "dagster_home"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def augment_dir(self) -> Path:
        """Derived training GIFs (``giflab run --augment``), a raw root of its own."""
        return self.data_dir / "augmented"

    @property
    def tmp_dir(self) -> Path:
        return self.data_dir / "tmp"

    def limits(self) -> DecodeLimits:
        """Decode bounds for GIF readers."""
        return DecodeLimits(self.max_total_pixels, self.max_frame_pixels, self.max_frames)

    def ensure_dirs(self) -> None:
        """Create the folders that must exist before a run (cheap, idempotent)."""
        for d in (self.data_dir, self.dagster_home, self.tmp_dir):
            d.mkdir(parents=True, exist_ok=True)
