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

Either may carry an ``offset`` model (``bundle["offset"]``, for gifsicle and ffmpeg by
default): from 16 colours up the prediction is GifLab's own estimate of the engine's output
(``lzw_offset``: the GIF re-encoded losslessly, times the engine's probes' drop at the row's
colours and level) plus one more regressor's correction (made monotone in lossy over the
trained and probed levels: ``offset_log_ratio``); below 16 colours it is the formulation's
prediction, capped by the offset one, so curves stay monotone in lossy, colours and frames
kept (docs/models.md, "The LZW offset").
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
# The probes each engine's offset reads, as (feature prefix, colour counts descending, lossy
# levels ascending): ``<prefix>_<C>_<L>`` is log2(GifLab's estimate of the engine's render at
# C colours and lossy L / the GIF re-encoded losslessly), the offset's grid. gifsicle's are the
# colour probes (``giflab.features.quantize``; 256 being the GIF's own palette when it has no
# more), ffmpeg's the ffmpeg probes (``giflab.features.ffmpeg_probe``), ImageMagick's its
# ``-fuzz`` and ``-colors`` emulated (``giflab.features.imagemagick_colors``). An engine whose
# probes have no colour count (gifski's, ``giflab.features.gifski_probe``: it has no colour
# knob) has ``()`` for colours and ``<prefix>_<L>`` features: one grid row that holds for every
# colour count. They are
# ``giflab.features.sampling``'s constants (tested), not imported, so that this module needs
# numpy alone.
OFFSET_PROBES: dict[str, tuple[str, tuple[int, ...], tuple[int, ...]]] = {
    "gifsicle": ("lzw_colors_ratio", (256, 64, 16), (0, 20, 60, 120)),
    "ffmpeg": ("ffmpeg_colors_ratio", (256, 64, 16), (0, 60, 80, 100, 120)),
    "imagemagick": ("imagemagick_colors_ratio", (256, 64, 16), (0, 20, 60, 120)),
    "gifski": ("gifski_quality_ratio", (), (0, 20, 40, 60, 80, 100, 120)),
}
OFFSET_LEVELS = OFFSET_PROBES["gifsicle"][2]
OFFSET_COLORS = OFFSET_PROBES["gifsicle"][1]


def offset_features(engine: str = "gifsicle") -> tuple[str, ...]:
    """The raw features ``engine``'s offset reads: ``lzw_size_ratio``, then its probes
    colour-major. Raises ``KeyError`` for an engine without probes."""
    prefix, colors, levels = OFFSET_PROBES[engine]
    if not colors:
        return ("lzw_size_ratio", *(f"{prefix}_{lv}" for lv in levels))
    return ("lzw_size_ratio", *(f"{prefix}_{c}_{lv}" for c in colors for lv in levels))


OFFSET_FEATURES = offset_features("gifsicle")


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


def make_offset(
    feature_names: Sequence[str], scaler: Any, regressor: Any = None, engine: str = "gifsicle"
) -> dict[str, Any]:
    """The ``offset`` entry of ``engine``'s bundle: where its raw inputs are in the (scaled)
    rows and how to unscale them, the probes' levels and colour counts, and the correction
    ``regressor``."""
    names = list(feature_names)
    features = offset_features(engine)
    _, colors, levels = OFFSET_PROBES[engine]
    columns = [names.index(name) for name in features]
    return {
        "features": list(features),
        "columns": columns,
        "mean": [float(scaler.mean_[c]) for c in columns],
        "scale": [float(scaler.scale_[c]) for c in columns],
        "levels": list(levels),
        "colors": list(colors),
        "min_colors": colors[-1] if colors else 1,  # no colour counts: every count is covered
        "regressor": regressor,
    }


def lzw_offset(offset: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """``ln 2 · (lzw_size_ratio + drop)`` per row: the estimated log size ratio of the GIF
    re-encoded the way the engine does (GifLab's emulation of it) at the row's lossy level and
    colour count.

    ``drop`` reads the probes' log2 ratios as a grid, colour counts by lossy levels. Each colour
    count's row is made non-increasing in lossy (each level capped by the ones below) and each
    count capped by the counts above it, so the grid never rises with lossy or with fewer
    colours; it is then interpolated linearly in lossy between levels (held past the last) and
    linearly in log2(colours) between counts (held outside them). Missing values count as 0.
    An offset without colour counts is one row, for every colour count.
    """
    x = np.asarray(x, dtype=np.float64)
    raw = x[:, offset["columns"]] * np.asarray(offset["scale"]) + np.asarray(offset["mean"])
    raw = np.nan_to_num(raw, nan=0.0)
    levels = np.asarray(offset["levels"], dtype=np.float64)
    if not offset["colors"]:
        row = np.minimum.accumulate(raw[:, 1:], axis=1)
        return np.log(2.0) * (raw[:, 0] + _interpolate(row, levels, x[:, -3]))
    colors = np.asarray(offset["colors"], dtype=np.float64)  # descending
    grid = raw[:, 1:].reshape(len(x), len(colors), len(levels))
    grid = np.minimum.accumulate(np.minimum.accumulate(grid, axis=2), axis=1)
    at_level = _interpolate(grid, levels, x[:, -3])  # (rows, colour counts)
    # log2(colours) ascending for the interpolation: the counts reversed.
    return np.log(2.0) * (
        raw[:, 0]
        + _interpolate(at_level[:, ::-1], np.log2(colors[::-1]), np.log2(np.maximum(x[:, -2], 1.0)))
    )


def _interpolate(values: np.ndarray, knots: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Per row, ``values[row, ..., :]`` (one value per knot, knots ascending) interpolated
    linearly at ``at[row]`` and held outside the knots; clamped between the two knots' values
    so rounding can never step outside them."""
    at = np.clip(at, knots[0], knots[-1])
    upper = np.clip(np.searchsorted(knots, at, side="right"), 1, len(knots) - 1)
    shape = (len(at),) + (1,) * (values.ndim - 1)
    weight = ((at - knots[upper - 1]) / (knots[upper] - knots[upper - 1])).reshape(shape)
    lo = np.take_along_axis(values, (upper - 1).reshape(shape), axis=-1)
    hi = np.take_along_axis(values, upper.reshape(shape), axis=-1)
    out = np.clip(lo + (hi - lo) * weight, np.minimum(lo, hi), np.maximum(lo, hi))
    return out[..., 0]


def offset_log_ratio(offset: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """The full-colour prediction: ``lzw_offset`` plus the correction regressor.

    With ``offset["correction_levels"]`` (a correction free in lossy) the sum is taken at each
    of those levels, each level capped by the ones below, and interpolated linearly in lossy
    between them (held outside): monotone in lossy by construction. Without, the correction is
    itself monotone in lossy and is added at the row's own level.
    """
    x = np.asarray(x, dtype=np.float64)
    knots = offset.get("correction_levels")
    if not knots:
        return lzw_offset(offset, x) + np.asarray(offset["regressor"].predict(x), dtype=np.float64)
    knots = np.asarray(knots, dtype=np.float64)
    at_knots = np.repeat(x[None], len(knots), axis=0)  # (levels, rows, inputs)
    at_knots[:, :, -3] = knots[:, None]
    flat = at_knots.reshape(-1, x.shape[1])
    total = lzw_offset(offset, flat) + np.asarray(
        offset["regressor"].predict(flat), dtype=np.float64
    )
    total = np.minimum.accumulate(total.reshape(len(knots), len(x)).T, axis=1)
    return _interpolate(total, knots, x[:, -3])


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
