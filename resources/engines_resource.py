"""The engines resource: which engines, their binaries, the variant matrix and timeouts."""

from dagster import ConfigurableResource

from giflab.compression import DEFAULT_COLORS, DEFAULT_FRAME_KEEP, DEFAULT_LOSSY, variant_matrix
from giflab.engines import DEFAULT_ENGINES, Engine, EngineStatus, Variant, get_engine
from giflab.engines.config import EngineConfig
from giflab.metrics import DEFAULT_MAX_FRAMES


class EnginesResource(ConfigurableResource):
    """Engine binaries (else ``GIFLAB_<ENGINE>_BIN`` or discovery) and the sweep matrix."""

    engines: list[str] = list(DEFAULT_ENGINES)
    # Binary paths by engine family ("gifsicle", "imagemagick", "ffmpeg", "gifski",
    # "animately"); unset ones come from GIFLAB_<FAMILY>_BIN or discovery.
    binaries: dict[str, str] = {}
    imagemagick_dither: str = "floyd-steinberg"
    ffmpeg_dither: str = "sierra2_4a"
    lossy: list[int] = list(DEFAULT_LOSSY)
    colors: list[int] = list(DEFAULT_COLORS)
    frame_keep: list[float] = list(DEFAULT_FRAME_KEEP)
    timeout_s: float = 300.0
    # Render again the variants whose stored row is a failure (a timeout under load, a killed
    # engine); off by default, since most failures are the engine's deterministic answer.
    retry_failed: bool = False
    max_metric_frames: int = DEFAULT_MAX_FRAMES

    def config(self) -> EngineConfig:
        """The domain ``EngineConfig`` (explicit binaries override the environment)."""
        fields = {f"{family}_bin": path for family, path in self.binaries.items()}
        return EngineConfig(
            timeout_s=self.timeout_s,
            imagemagick_dither=self.imagemagick_dither,
            ffmpeg_dither=self.ffmpeg_dither,
            **fields,
        )

    def engine(self, name: str) -> Engine:
        """The engine ``name`` with this configuration."""
        return get_engine(name, self.config())

    def status(self, name: str) -> EngineStatus:
        """Whether engine ``name`` can run here."""
        return self.engine(name).available()

    def matrix(self) -> list[Variant]:
        """The configured variant matrix."""
        return variant_matrix(self.lossy, self.colors, self.frame_keep)
