"""The curve-model bundle: what one engine's trained model is, in memory and in ``<engine>.pkl``.

A bundle is a plain ``dict`` holding only builtins, numpy values and ``xgboost.XGBRegressor``
objects, so the exported pickle loads in a process that has numpy, scikit-learn and xgboost and
nothing of GifLab. Its inputs are ``MODEL_INPUTS`` in order: the ``GIF_FEATURES`` *scaled* by
``scaler.pkl``, then the raw variant ``lossy``, ``colors``, ``frame_keep``. Its target is the log
size ratio ``ln(kilobytes / orig_kilobytes)``.

Formulations (chosen per engine by validation score, see docs/models.md):

* ``joint`` — one regressor (key ``"all"``) over every variant, monotone constraints
  non-increasing in ``lossy``, non-decreasing in ``colors`` and ``frame_keep``.
* ``per_level`` — one regressor per trained lossy level (key ``str(level)``). A prediction at
  level ``L`` is the minimum of the predictions of every trained level ``<= L``, so curves are
  monotone in lossy by construction; levels between trained ones use the level below.

Either may carry an ``offset`` model (``bundle["offset"]``, for gifsicle by default): at full
colours (``colors >= 256``) the prediction is GifLab's own estimate of the engine's output
(``lzw_offset``: the GIF re-encoded losslessly, times the lossy probes' drop at the row's
level) plus one more monotone regressor's correction; below full colours it is the formulation's
prediction, capped by the full-colour one, so curves stay monotone in lossy, colours and
frames kept (docs/models.md, "The LZW offset").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

BUNDLE_FORMAT = 1
FORMULATIONS = ("joint", "per_level")
TARGET_NAME = "log_size_ratio"
# The per-render inputs, always last and in this order.
VARIANT_INPUTS = ("lossy", "colors", "frame_keep")
# The lossy levels of the offset's probes (0: the lossless estimate) and its inputs, raw
# feature values; the levels are ``giflab.features.sampling.LOSSY_PROBE_LEVELS`` (tested), not
# imported, so that this module needs numpy alone.
OFFSET_LEVELS = (0, 20, 60, 120)
OFFSET_FEATURES = ("lzw_size_ratio", *(f"lzw_lossy_ratio_{lv}" for lv in OFFSET_LEVELS[1:]))
FULL_COLORS = 256


def make_bundle(
    *,
    engine: str,
    formulation: str,
    feature_names: Sequence[str],
    regressors: Mapping[str, Any],
    lossy_levels: Sequence[int],
    extra: Mapping[str, Any] | None = None,
) -> dict:
    """A bundle dict (validated) for ``engine``; ``extra`` holds JSON-able facts (metrics, params)."""
    if formulation not in FORMULATIONS:
        raise ValueError(f"formulation must be one of {FORMULATIONS}, got {formulation!r}")
    names = tuple(feature_names)
    if names[-3:] != VARIANT_INPUTS:
        raise ValueError("feature_names must end with lossy, colors, frame_keep")
    keys = set(regressors)
    if formulation == "joint" and keys != {"all"}:
        raise ValueError("a joint bundle has one regressor, keyed 'all'")
    if formulation == "per_level" and keys != {str(int(lv)) for lv in lossy_levels}:
        raise ValueError("a per_level bundle has one regressor per lossy level, keyed str(level)")
    return {
        "bundle_format": BUNDLE_FORMAT,
        "engine": engine,
        "formulation": formulation,
        "feature_names": list(names),
        "target": TARGET_NAME,
        "lossy_levels": sorted(int(lv) for lv in lossy_levels),
        "regressors": dict(regressors),
        "extra": dict(extra or {}),
    }


def predict_log_ratio(bundle: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """Predicted ``ln(kilobytes / orig_kilobytes)`` for rows ``x`` (columns: feature_names)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(bundle["feature_names"]):
        raise ValueError(f"expected rows of {len(bundle['feature_names'])} inputs, got {x.shape}")
    out = formulation_log_ratio(bundle, x)
    offset = bundle.get("offset")
    if offset:
        full = offset_log_ratio(offset, x)
        colors = x[:, len(bundle["feature_names"]) - 2]
        out = np.where(colors >= offset["min_colors"], full, np.minimum(out, full))
    return out


def formulation_log_ratio(bundle: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """The joint or per-level regressors' prediction alone (no offset model)."""
    if bundle["formulation"] == "joint":
        return np.asarray(bundle["regressors"]["all"].predict(x), dtype=np.float64)
    lossy_col = len(bundle["feature_names"]) - 3
    levels = np.asarray(bundle["lossy_levels"], dtype=np.float64)
    out = np.full(len(x), np.inf)
    for level in levels:
        applies = x[:, lossy_col] >= level
        if not applies.any():
            continue
        at_level = x[applies].copy()
        at_level[:, lossy_col] = level
        pred = bundle["regressors"][str(int(level))].predict(at_level)
        out[applies] = np.minimum(out[applies], pred)
    below = ~np.isfinite(out)  # lossy below the lowest trained level: use the lowest
    if below.any():
        at_lowest = x[below].copy()
        at_lowest[:, lossy_col] = levels[0]
        out[below] = bundle["regressors"][str(int(levels[0]))].predict(at_lowest)
    return out


def make_offset(feature_names: Sequence[str], scaler: Any, regressor: Any = None) -> dict[str, Any]:
    """The ``offset`` entry of a bundle: where its raw inputs are in the (scaled) rows and how
    to unscale them, the probes' levels, and the correction ``regressor``."""
    names = list(feature_names)
    columns = [names.index(name) for name in OFFSET_FEATURES]
    return {
        "features": list(OFFSET_FEATURES),
        "columns": columns,
        "mean": [float(scaler.mean_[c]) for c in columns],
        "scale": [float(scaler.scale_[c]) for c in columns],
        "levels": list(OFFSET_LEVELS),
        "min_colors": FULL_COLORS,
        "regressor": regressor,
    }


def lzw_offset(offset: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """``ln 2 · (lzw_size_ratio + drop)`` per row: the estimated log size ratio of the GIF
    re-encoded the way gifsicle does at the row's lossy level. ``drop`` interpolates the
    probes' log2 ratios linearly between their levels (0 at lossy 0, each level capped by the
    ones below so it never rises; held past the last). Missing values count as 0."""
    x = np.asarray(x, dtype=np.float64)
    raw = x[:, offset["columns"]] * np.asarray(offset["scale"]) + np.asarray(offset["mean"])
    raw = np.nan_to_num(raw, nan=0.0)
    drops = np.minimum.accumulate(np.column_stack([np.zeros(len(x)), raw[:, 1:]]), axis=1)
    levels = np.asarray(offset["levels"], dtype=np.float64)
    lossy = np.clip(x[:, -3], levels[0], levels[-1])
    upper = np.clip(np.searchsorted(levels, lossy, side="right"), 1, len(levels) - 1)
    lo, hi = levels[upper - 1], levels[upper]
    weight = (lossy - lo) / (hi - lo)
    rows = np.arange(len(x))
    first, last = drops[rows, upper - 1], drops[rows, upper]
    # Clamped into [last, first] so rounding can never lift the curve by an ulp anywhere.
    drop = np.clip(first + (last - first) * weight, last, first)
    return np.log(2.0) * (raw[:, 0] + drop)


def offset_log_ratio(offset: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """The full-colour prediction: ``lzw_offset`` plus the correction regressor."""
    return lzw_offset(offset, x) + np.asarray(offset["regressor"].predict(x), dtype=np.float64)


def model_inputs(scaler: Any, gif_features: np.ndarray, variants: np.ndarray) -> np.ndarray:
    """The rows a bundle takes: raw ``GIF_FEATURES`` rows scaled by ``scaler.pkl``, then the raw
    (lossy, colors, frame_keep) rows.

    The scaling is ``StandardScaler.transform``'s own arithmetic, ``(x - mean_) / scale_``, done
    here so that plain arrays, DataFrames and empty splits all take the same path (scikit-learn
    warns on arrays for a DataFrame-fitted scaler and refuses zero rows).
    """
    raw = np.asarray(gif_features, dtype=np.float64)
    scaled = (raw - scaler.mean_) / scaler.scale_
    return np.hstack([scaled.reshape(len(raw), -1), np.asarray(variants, dtype=np.float64)])


def predict_kilobytes(
    bundle: Mapping[str, Any], scaler: Any, gif_features: np.ndarray, variants: np.ndarray
) -> np.ndarray:
    """Predicted kilobytes for raw ``GIF_FEATURES`` rows and (lossy, colors, frame_keep) rows;
    ``orig_kilobytes`` is read by name from ``bundle['feature_names']``."""
    raw = np.asarray(gif_features, dtype=np.float64)
    if len(raw) == 0:  # an empty split: nothing to predict
        return np.empty(0, dtype=np.float64)
    x = model_inputs(scaler, raw, variants)
    orig_kb = raw[:, bundle["feature_names"].index("orig_kilobytes")]
    return orig_kb * np.exp(predict_log_ratio(bundle, x))
