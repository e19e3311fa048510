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
