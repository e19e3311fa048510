"""Versioned row schemas: every row written to the database is validated by one of these.

A record class names its ``SCHEMA_VERSION``; the IO manager stamps it on every row, so rows
written by an older schema can be found and migrated rather than silently mixed.
"""

from __future__ import annotations

from copy import copy
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.fields import FieldInfo

Sha256 = Field(pattern=r"^[0-9a-f]{64}$")


class Record(BaseModel):
    """Base of all stored rows: strict fields, no extras, a schema version."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    SCHEMA_VERSION: ClassVar[int] = 1


class GifMetadataV1(Record):
    """One GIF as measured at ingest (see ``giflab.meta.read_metadata``)."""

    SCHEMA_VERSION: ClassVar[int] = 1

    gif_sha: str = Sha256
    orig_filename: str
    orig_filenames: list[str]
    rel_paths: list[str]
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    n_frames: int = Field(ge=1)
    duration_ms: int = Field(ge=0)
    raw_duration_ms: int = Field(ge=0)
    fps: float = Field(ge=0)
    n_colors: int = Field(ge=1)
    loop_count: int | None = Field(default=None, ge=0)
    has_transparency: bool
    file_kb: float = Field(gt=0)


class CompressionRunV1(Record):
    """One render of one GIF by one engine at one variant, with its quality metrics.

    ``status`` is ``ok`` or ``failed`` (then ``error`` says why and the measures are NULL).
    ``colors`` is what was requested; ``applied`` what the engine actually applied.
    """

    SCHEMA_VERSION: ClassVar[int] = 1

    gif_sha: str = Sha256
    engine: str
    engine_version: str | None = None
    lossy: int = Field(ge=0)
    colors: int = Field(ge=2, le=256)
    frame_keep: float = Field(gt=0, le=1)
    status: str = Field(pattern="^(ok|failed)$")
    error: str | None = None
    kilobytes: float | None = Field(default=None, ge=0)
    render_ms: int | None = Field(default=None, ge=0)
    kept_frames: int = Field(ge=1)
    render_frames: int | None = None
    render_colors: int | None = None
    applied: dict
    argv: list[str]
    ssim_mean: float | None = None
    ssim_min: float | None = None
    ssim_kept_mean: float | None = None
    ms_ssim: float | None = None
    psnr: float | None = None
    mse: float | None = None
    gmsd: float | None = None
    ssimulacra2: float | None = None
    color_hist_distance: float | None = None
    edge_similarity: float | None = None
    temporal_error: float | None = None
    transparency_error: float | None = None
    frames_compared: float | None = None


class GifFeaturesV1(Record):
    """The 79 visual features of one GIF (``giflab.features``; definitions in docs/features.md).

    The six CLIP scores are NULL when the model's weights were unavailable; then
    ``clip_missing_reason`` says why and ``clip_model`` is NULL.
    """

    SCHEMA_VERSION: ClassVar[int] = 1

    gif_sha: str = Sha256
    entropy: float = Field(ge=0, le=8)
    edge_density: float = Field(ge=0, le=1)
    color_complexity: float = Field(ge=0, le=1)
    gradient_smoothness: float = Field(ge=0, le=1)
    contrast_score: float = Field(ge=0, le=1)
    text_density: float = Field(ge=0, le=1)
    dct_energy_ratio: float = Field(ge=0, le=1)
    color_histogram_entropy: float = Field(ge=0, le=1)
    dominant_color_ratio: float = Field(ge=0, le=1)
    motion_intensity: float = Field(ge=0, le=1)
    motion_smoothness: float = Field(ge=0, le=1)
    static_region_ratio: float = Field(ge=0, le=1)
    temporal_entropy: float = Field(ge=0, le=1)
    frame_similarity: float = Field(ge=-1, le=1)
    inter_frame_mse_mean: float = Field(ge=0, le=1)
    inter_frame_mse_std: float = Field(ge=0, le=0.5)
    lossless_compression_ratio: float = Field(ge=0, le=1)
    transparency_ratio: float = Field(ge=0, le=1)
    run_length: float = Field(ge=0, le=1)
    # Added after the first datasets were written: NULL in their rows until ``giflab run``
    # recomputes their features (it treats a NULL classical feature as work left to do).
    lzw_size_ratio: float | None = Field(default=None, ge=-16, le=16)
    # Features version 3 (gifsicle's lossy LZW counted): NULL in older rows, as above.
    lzw_lossy_ratio_20: float | None = Field(default=None, ge=-16, le=16)
    lzw_lossy_ratio_60: float | None = Field(default=None, ge=-16, le=16)
    lzw_lossy_ratio_120: float | None = Field(default=None, ge=-16, le=16)
    # Features version 4 (gifsicle's --colors emulated): NULL in older rows, as above.
    lzw_colors_ratio_256_0: float | None = Field(default=None, ge=-16, le=16)
    lzw_colors_ratio_256_20: float | None = Field(default=None, ge=-16, le=16)
    lzw_colors_ratio_256_60: float | None = Field(default=None, ge=-16, le=16)
    lzw_colors_ratio_256_120: float | None = Field(default=None, ge=-16, le=16)
    lzw_colors_ratio_64_0: float | None = Field(default=None, ge=-16, le=16)
    lzw_colors_ratio_64_20: float | None = Field(default=None, ge=-16, le=16)
    lzw_colors_ratio_64_60: float | None = Field(default=None, ge=-16, le=16)
    lzw_colors_ratio_64_120: float | None = Field(default=None, ge=-16, le=16)
    lzw_colors_ratio_16_0: float | None = Field(default=None, ge=-16, le=16)
    lzw_colors_ratio_16_20: float | None = Field(default=None, ge=-16, le=16)
    lzw_colors_ratio_16_60: float | None = Field(default=None, ge=-16, le=16)
    lzw_colors_ratio_16_120: float | None = Field(default=None, ge=-16, le=16)
    # Features version 5 (GifLab's ffmpeg engine emulated): NULL in older rows, as above.
    ffmpeg_colors_ratio_256_0: float | None = Field(default=None, ge=-16, le=16)
    ffmpeg_colors_ratio_256_60: float | None = Field(default=None, ge=-16, le=16)
    ffmpeg_colors_ratio_256_120: float | None = Field(default=None, ge=-16, le=16)
    ffmpeg_colors_ratio_64_0: float | None = Field(default=None, ge=-16, le=16)
    ffmpeg_colors_ratio_64_60: float | None = Field(default=None, ge=-16, le=16)
    ffmpeg_colors_ratio_64_120: float | None = Field(default=None, ge=-16, le=16)
    ffmpeg_colors_ratio_16_0: float | None = Field(default=None, ge=-16, le=16)
    ffmpeg_colors_ratio_16_60: float | None = Field(default=None, ge=-16, le=16)
    ffmpeg_colors_ratio_16_120: float | None = Field(default=None, ge=-16, le=16)
    # Features version 6 (the ImageMagick engine's -fuzz): NULL in older rows, as above.
    imagemagick_fuzz_ratio_0: float | None = Field(default=None, ge=-16, le=16)
    imagemagick_fuzz_ratio_20: float | None = Field(default=None, ge=-16, le=16)
    imagemagick_fuzz_ratio_60: float | None = Field(default=None, ge=-16, le=16)
    imagemagick_fuzz_ratio_120: float | None = Field(default=None, ge=-16, le=16)
    # Features version 7 (the gifski engine's --quality): NULL in older rows, as above.
    gifski_quality_ratio_0: float | None = Field(default=None, ge=-16, le=16)
    gifski_quality_ratio_20: float | None = Field(default=None, ge=-16, le=16)
    gifski_quality_ratio_60: float | None = Field(default=None, ge=-16, le=16)
    gifski_quality_ratio_120: float | None = Field(default=None, ge=-16, le=16)
    # Features version 8 (the ImageMagick engine's -colors): NULL in older rows, as above.
    imagemagick_colors_ratio_256_0: float | None = Field(default=None, ge=-16, le=16)
    imagemagick_colors_ratio_256_20: float | None = Field(default=None, ge=-16, le=16)
    imagemagick_colors_ratio_256_60: float | None = Field(default=None, ge=-16, le=16)
    imagemagick_colors_ratio_256_120: float | None = Field(default=None, ge=-16, le=16)
    imagemagick_colors_ratio_64_0: float | None = Field(default=None, ge=-16, le=16)
    imagemagick_colors_ratio_64_20: float | None = Field(default=None, ge=-16, le=16)
    imagemagick_colors_ratio_64_60: float | None = Field(default=None, ge=-16, le=16)
    imagemagick_colors_ratio_64_120: float | None = Field(default=None, ge=-16, le=16)
    imagemagick_colors_ratio_16_0: float | None = Field(default=None, ge=-16, le=16)
    imagemagick_colors_ratio_16_20: float | None = Field(default=None, ge=-16, le=16)
    imagemagick_colors_ratio_16_60: float | None = Field(default=None, ge=-16, le=16)
    imagemagick_colors_ratio_16_120: float | None = Field(default=None, ge=-16, le=16)
    ffmpeg_colors_ratio_256_80: float | None = Field(default=None, ge=-16, le=16)
    ffmpeg_colors_ratio_256_100: float | None = Field(default=None, ge=-16, le=16)
    ffmpeg_colors_ratio_64_80: float | None = Field(default=None, ge=-16, le=16)
    ffmpeg_colors_ratio_64_100: float | None = Field(default=None, ge=-16, le=16)
    ffmpeg_colors_ratio_16_80: float | None = Field(default=None, ge=-16, le=16)
    ffmpeg_colors_ratio_16_100: float | None = Field(default=None, ge=-16, le=16)
    gifski_quality_ratio_40: float | None = Field(default=None, ge=-16, le=16)
    gifski_quality_ratio_80: float | None = Field(default=None, ge=-16, le=16)
    gifski_quality_ratio_100: float | None = Field(default=None, ge=-16, le=16)
    clip_screen_capture: float | None = Field(default=None, ge=0, le=1)
    clip_vector_art: float | None = Field(default=None, ge=0, le=1)
    clip_photography: float | None = Field(default=None, ge=0, le=1)
    clip_hand_drawn: float | None = Field(default=None, ge=0, le=1)
    clip_3d_rendered: float | None = Field(default=None, ge=0, le=1)
    clip_pixel_art: float | None = Field(default=None, ge=0, le=1)
    clip_model: str | None = None
    clip_missing_reason: str | None = None
    # ``giflab.features.FEATURES_VERSION`` of the code that computed the row (NULL: version 1,
    # rows written before it was stored); older rows are recomputed by the next ``giflab run``.
    features_version: int | None = Field(default=None, ge=1)


class _MetricRecordOwnFields(Record):
    """The training table's fields besides the features (``MetricRecordV1`` puts the
    features between ``orig_has_transparency`` and ``clip_model``)."""

    gif_sha: str = Sha256
    split: str = Field(pattern="^(train|val|test)$")
    orig_filename: str
    engine: str = Field(min_length=1)
    lossy: int = Field(ge=0)
    colors: int = Field(ge=2, le=256)
    frame_keep: float = Field(gt=0, le=1)
    engine_version: str | None = None
    kilobytes: float = Field(gt=0)
    render_ms: int = Field(ge=0)
    kept_frames: int = Field(ge=1)
    render_frames: int = Field(ge=1)
    render_colors: int = Field(ge=1)
    ssim_mean: float | None = None
    ssim_min: float | None = None
    ssim_kept_mean: float | None = None
    ms_ssim: float | None = None
    psnr: float | None = None
    mse: float | None = None
    gmsd: float | None = None
    ssimulacra2: float | None = None
    color_hist_distance: float | None = None
    edge_similarity: float | None = None
    temporal_error: float | None = None
    transparency_error: float | None = None
    frames_compared: float | None = None
    orig_kilobytes: float = Field(gt=0)
    orig_width: int = Field(gt=0)
    orig_height: int = Field(gt=0)
    orig_frames: int = Field(ge=1)
    orig_fps: float = Field(ge=0)
    orig_duration_ms: int = Field(ge=0)
    orig_n_colors: int = Field(ge=1)
    orig_loop_count: int | None = Field(default=None, ge=0)
    orig_has_transparency: bool
    clip_model: str | None = None
    source_platform: str = Field(min_length=1)
    source_metadata: str
    tags: str


# The GIF features, each declared once (``GifFeaturesV1``), in their order.
FEATURE_FIELDS = tuple(
    name
    for name in GifFeaturesV1.model_fields
    if name not in ("gif_sha", "clip_model", "clip_missing_reason", "features_version")
)


def _field(model: type[Record], name: str) -> tuple[Any, FieldInfo]:
    info = model.model_fields[name]
    return info.annotation, copy(info)


def _record_fields() -> dict[str, tuple[Any, FieldInfo]]:
    own = list(_MetricRecordOwnFields.model_fields)
    at = own.index("orig_has_transparency") + 1
    fields = {name: _field(_MetricRecordOwnFields, name) for name in own[:at]}
    fields.update({name: _field(GifFeaturesV1, name) for name in FEATURE_FIELDS})
    fields.update({name: _field(_MetricRecordOwnFields, name) for name in own[at:]})
    return fields


_METRIC_RECORD_DOC = """One row of the training table: an ``ok`` render joined with its GIF's metadata and
features.

Columns and order: ``giflab.dataset.columns.RECORD_COLUMNS``; built and validated by
``giflab.dataset.build_training_table`` (docs/dataset.md). ``orig_*`` mirror ``GifMetadataV1``,
the features are ``GifFeaturesV1``'s own fields (``FEATURE_FIELDS``, declared there once), the
measures ``CompressionRunV1``'s — required here because an ``ok`` render always has them.
``source_metadata`` and ``tags`` are JSON text (an object and a list).
"""
# The schema version is Record's (1): bump it by giving this model a base of its own.
MetricRecordV1 = create_model(
    "MetricRecordV1",
    __base__=Record,
    __doc__=_METRIC_RECORD_DOC,
    __module__=__name__,
    **_record_fields(),
)
