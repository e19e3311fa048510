"""The one place engines are registered. Adding an engine: one module + one line here
(or, outside this package, an entry point in the ``giflab.engines`` group)."""

from __future__ import annotations

from importlib.metadata import entry_points

from giflab.engines.animately import AnimatelyAdvanced, AnimatelyHard, AnimatelyStandard
from giflab.engines.base import Engine, EngineStatus
from giflab.engines.config import EngineConfig
from giflab.engines.ffmpeg import Ffmpeg
from giflab.engines.gifsicle import Gifsicle
from giflab.engines.gifski import Gifski
from giflab.engines.imagemagick import ImageMagick
from giflab.engines.pillow_engine import PillowAvif, PillowGif, PillowWebp

ENGINE_CLASSES: dict[str, type[Engine]] = {
    cls.name: cls
    for cls in (
        Gifsicle,
        AnimatelyStandard,
        AnimatelyAdvanced,
        AnimatelyHard,
        ImageMagick,
        Ffmpeg,
        Gifski,
        PillowGif,
        PillowWebp,
        PillowAvif,
    )
}
DEFAULT_ENGINES = (
    "gifsicle",
    "animately-standard",
    "animately-advanced",
    "animately-hard",
    "imagemagick",
    "ffmpeg",
    "gifski",
)
ALL_ENGINES = tuple(ENGINE_CLASSES)  # the default seven plus tier 2 (pillow, WebP, AVIF)


def all_engine_classes() -> dict[str, type[Engine]]:
    """Built-in engines plus those other packages register under ``giflab.engines``."""
    found = dict(ENGINE_CLASSES)
    for ep in entry_points(group="giflab.engines"):
        cls = ep.load()
        found[cls.name] = cls
    return found


def get_engine(name: str, config: EngineConfig | None = None, binary: str | None = None) -> Engine:
    """An engine by name, with its configuration (binaries, timeout) and optional binary path."""
    classes = all_engine_classes()
    if name not in classes:
        raise KeyError(f"unknown engine {name!r}; known: {', '.join(sorted(classes))}")
    return classes[name](config, binary)


def engine_statuses(
    names=DEFAULT_ENGINES, config: EngineConfig | None = None
) -> list[EngineStatus]:
    """Availability of each named engine."""
    config = config or EngineConfig()
    return [get_engine(n, config).available() for n in names]
