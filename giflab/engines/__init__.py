"""Compression engines: one module per engine family, registered in ``registry``."""

from giflab.engines.base import Engine, EngineStatus, RenderResult, SourceGif, Variant
from giflab.engines.config import EngineConfig
from giflab.engines.frame_keep import frame_keep_indices, kept_delays
from giflab.engines.registry import ALL_ENGINES, DEFAULT_ENGINES, engine_statuses, get_engine
from giflab.engines.sweep import render_variant, variant_matrix

__all__ = [
    "ALL_ENGINES",
    "DEFAULT_ENGINES",
    "Engine",
    "EngineConfig",
    "EngineStatus",
    "RenderResult",
    "SourceGif",
    "Variant",
    "engine_statuses",
    "frame_keep_indices",
    "get_engine",
    "kept_delays",
    "render_variant",
    "variant_matrix",
]
