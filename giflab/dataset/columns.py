"""Column names shared by the training table, the scaler, the models and the exported files.

The training table has one row per successful render (``status = 'ok'``) joined with its GIF's
metadata (``orig_*``) and features. Models see only ``MODEL_INPUTS``: what is known about a GIF
before compressing it, plus the requested variant.
"""

from __future__ import annotations

from giflab.features import FEATURE_NAMES
from giflab.metrics import METRIC_NAMES

KEY_COLUMNS = ("gif_sha", "split", "orig_filename")
VARIANT_COLUMNS = ("engine", "lossy", "colors", "frame_keep")
# gif_metadata column -> training-table column.
ORIG_COLUMNS = {
    "file_kb": "orig_kilobytes",
    "width": "orig_width",
    "height": "orig_height",
    "n_frames": "orig_frames",
    "fps": "orig_fps",
    "duration_ms": "orig_duration_ms",
    "n_colors": "orig_n_colors",
    "loop_count": "orig_loop_count",
    "has_transparency": "orig_has_transparency",
}
ORIG_FEATURES = (
    "orig_kilobytes",
    "orig_width",
    "orig_height",
    "orig_frames",
    "orig_fps",
    "orig_duration_ms",
    "orig_n_colors",
    "orig_has_transparency",
)
# Per-GIF inputs the scaler is fitted on (train split only).
GIF_FEATURES = tuple(FEATURE_NAMES) + ORIG_FEATURES
MODEL_INPUTS = GIF_FEATURES + ("lossy", "colors", "frame_keep")
TARGET = "kilobytes"
RUN_COLUMNS = (
    "engine_version",
    "kilobytes",
    "render_ms",
    "kept_frames",
    "render_frames",
    "render_colors",
    *METRIC_NAMES,
)

# Where a training-table row's GIF came from (derived from gif_metadata's rel_paths and names).
SOURCE_COLUMNS = ("source_platform", "source_metadata", "tags")
# One row of the training table, as validated by ``giflab.schemas.MetricRecordV1``, in order.
RECORD_COLUMNS = (
    *KEY_COLUMNS,
    *VARIANT_COLUMNS,
    *RUN_COLUMNS,
    *ORIG_COLUMNS.values(),
    *FEATURE_NAMES,
    "clip_model",
    *SOURCE_COLUMNS,
)
# Stamped on every row after validation; ``dataset_version`` hashes the RECORD_COLUMNS only.
VERSION_COLUMNS = ("schema_version", "dataset_version", "code_version")
TABLE_COLUMNS = RECORD_COLUMNS + VERSION_COLUMNS
# Row order of the training table (unique: one render per GIF, engine and variant).
SORT_KEY = ("gif_sha", "engine", "frame_keep", "colors", "lossy")
SPLITS = ("train", "val", "test")

# Exported files: these columns first, in this order (the seed dataset's schema), then every
# other training-table column under its own name. Seed name -> training-table column:
EXPORT_ALIASES = {
    "frame_keep_ratio": "frame_keep",
    "color_keep_count": "colors",
    "ssim": "ssim_mean",
}
EXPORT_LEAD_COLUMNS = (
    "gif_sha",
    "orig_filename",
    "engine",
    "lossy",
    "frame_keep_ratio",
    "color_keep_count",
    "kilobytes",
    "ssim",
    "render_ms",
    "orig_kilobytes",
    "orig_width",
    "orig_height",
    "orig_frames",
    "orig_fps",
    "orig_n_colors",
    "entropy",
    "source_platform",
    "source_metadata",
    "tags",
    "timestamp",
)
