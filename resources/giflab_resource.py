"""The GifLab resource: where the data lives and how many workers a step may use."""

import os

from dagster import ConfigurableResource

from giflab.config import Settings
from giflab.frames import DecodeLimits


class GifLabResource(ConfigurableResource):
    """Data directory, raw and fail folders, worker count and decode bounds."""

    data_dir: str
    raw_dir: str | None = None
    fail_dir: str | None = None
    workers: int = os.cpu_count() or 1
    max_total_pixels: int = 2_000_000_000
    max_frame_pixels: int = 100_000_000
    max_frames: int = 20_000

    def settings(self) -> Settings:
        """The domain ``Settings`` for this configuration."""
        return Settings(
            data_dir=self.data_dir,
            raw_dir=self.raw_dir,
            fail_dir=self.fail_dir,
            max_total_pixels=self.max_total_pixels,
            max_frame_pixels=self.max_frame_pixels,
            max_frames=self.max_frames,
        )

    def limits(self) -> DecodeLimits:
        """Decode bounds for GIF readers."""
        return self.settings().limits()
