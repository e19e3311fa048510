"""How good the curve models are on held-out GIFs, next to a naive baseline.

Errors are absolute percentage errors of predicted vs actual kilobytes, per render. The
baseline knows only the source size and the variant: ``orig_kilobytes`` x the median of
``kilobytes / orig_kilobytes`` over the train renders of the same engine and variant. The
target-size hit rate asks whether the model picks the right lossy level for a size budget.
Definitions: docs/models.md#evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from giflab.dataset.columns import GIF_FEATURES, TARGET
from giflab.dataset.splits import is_derived
from giflab.prediction.bundle import VARIANT_INPUTS, predict_kilobytes
from giflab.prediction.train import abs_pct_errors

VARIANT_KEY = ["engine", "lossy", "colors", "frame_keep"]
CURVE_KEY = ["engine", "gif_sha", "colors", "frame_keep"]
PREDICTORS = ("model", "baseline")
# A pick within 5 % of the budget counts: the models' own goal is a 5 % median error.
HIT_TOLERANCE = 0.05
ERROR_COLUMNS = ["engine", "lossy", "predictor", "n_rows", "n_gifs", "median_ape", "p90_ape"]
PREDICTION_COLUMNS = [
    "gif_sha",
    "orig_filename",
    *VARIANT_KEY,
    "orig_kilobytes",
    "kilobytes",
    "predicted_kilobytes",
    "baseline_kilobytes",
    "model_ape",
    "baseline_ape",
]


@dataclass(frozen=True)
class Evaluation:
    """``predictions``: one row per evaluated render; ``errors``: tidy, one row per engine, lossy
    level and predictor; ``summary``: overall numbers plus ``summary["engines"][engine]``."""

    split: str
    predictions: pd.DataFrame
    errors: pd.DataFrame
    summary: dict


def baseline_ratios(table: pd.DataFrame) -> pd.Series:
    """Median ``kilobytes / orig_kilobytes`` over train renders, indexed by engine and variant.

    Renders of derived GIFs (``giflab run --augment``) are left out: the baseline is the
    naive rule learnt from the original GIFs alone, whatever the models were trained on.
    """
    train = table[(table["split"] == "train").to_numpy(dtype=bool) & ~_derived(table)]
    ratio = (train[TARGET] / train["orig_kilobytes"]).astype("float64")
    return ratio.groupby([train[c] for c in VARIANT_KEY]).median().rename("ratio")


def _derived(table: pd.DataFrame) -> np.ndarray:
    if "source_metadata" not in table.columns:
        return np.zeros(len(table), dtype=bool)
    return is_derived(table).to_numpy(dtype=bool)


def baseline_kilobytes(rows: pd.DataFrame, ratios: pd.Series) -> np.ndarray:
    """The baseline's kilobytes for ``rows``; a variant never rendered in train falls back to the
    median of the engine's per-variant ratios at that lossy level, then at all levels."""
    out = np.full(len(rows), np.nan)
    if ratios.empty or rows.empty:
        return out
    frame = ratios.reset_index()
    for key in (VARIANT_KEY, ["engine", "lossy"], ["engine"]):
        # Medians of the per-variant medians: every variant weighs the same in a fallback.
        level = frame.groupby(key)["ratio"].median().rename("fallback")
        joined = rows[key].join(level, on=key)["fallback"].to_numpy(np.float64)
        out = np.where(np.isnan(out), joined, out)
    return rows["orig_kilobytes"].to_numpy(np.float64) * out


def predicted_kilobytes(bundle: Mapping[str, Any], scaler: Any, rows: pd.DataFrame) -> np.ndarray:
    """The bundle's kilobytes for training-table ``rows`` (any split)."""
    gif = rows[list(GIF_FEATURES)].to_numpy(dtype=np.float64, na_value=np.nan)
    variants = rows[list(VARIANT_INPUTS)].to_numpy(dtype=np.float64)
    return predict_kilobytes(bundle, scaler, gif, variants)


def pick_hits(levels: np.ndarray, actual: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Target-size hits along one curve (one GIF, engine, colours, frame_keep), one per target.

    Targets are the actual sizes at each level (each is reachable). For target ``T`` the picker
    takes the lowest lossy level whose *predicted* size is ``<= T`` (the most lossy level when
    none is). A hit: the pick's actual size is ``<= T·1.05`` and the pick is no more lossy than
    the lowest level whose actual size is ``<= T·0.95`` (any level, when none is).
    """
    order = np.argsort(levels, kind="stable")
    levels, actual, predicted = levels[order], actual[order], predicted[order]
    targets = actual[:, None]
    fits = predicted[None, :] <= targets  # [target, level]
    pick = np.where(fits.any(axis=1), fits.argmax(axis=1), len(levels) - 1)
    tight = actual[None, :] <= targets * (1 - HIT_TOLERANCE)
    limit = np.where(tight.any(axis=1), levels[tight.argmax(axis=1)], np.inf)
    return (actual[pick] <= actual * (1 + HIT_TOLERANCE)) & (levels[pick] <= limit)


def _hits(predictions: pd.DataFrame, column: str) -> np.ndarray:
    """Every target's hit (bool) over every curve with at least two lossy levels."""
    hits = [np.empty(0, dtype=bool)]
    for _, curve in predictions.groupby(CURVE_KEY, sort=True):
        if curve["lossy"].nunique() >= 2:
            hits.append(
                pick_hits(
                    curve["lossy"].to_numpy(np.float64),
                    curve[TARGET].to_numpy(np.float64),
                    curve[column].to_numpy(np.float64),
                )
            )
    return np.concatenate(hits)


def _stat(values: pd.Series | np.ndarray, q: float) -> float:
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    return float(np.percentile(values, q)) if len(values) else float("nan")


def _ratio(num: float, den: float) -> float:
    if np.isnan(num) or np.isnan(den) or den <= 0:
        return float("nan")
    return num / den


def _errors(predictions: pd.DataFrame) -> pd.DataFrame:
    """Tidy errors: one row per engine, lossy level and predictor."""
    rows = []
    for (engine, lossy), group in predictions.groupby(["engine", "lossy"], sort=True):
        for predictor in PREDICTORS:
            ape = group[f"{predictor}_ape"]
            rows.append(
                {
                    "engine": engine,
                    "lossy": int(lossy),
                    "predictor": predictor,
                    "n_rows": len(group),
                    "n_gifs": group["gif_sha"].nunique(),
                    "median_ape": _stat(ape, 50),
                    "p90_ape": _stat(ape, 90),
                }
            )
    return pd.DataFrame(rows, columns=ERROR_COLUMNS)


def _summary(predictions: pd.DataFrame, errors: pd.DataFrame) -> dict[str, float | int]:
    """Flat numbers for one set of predictions (NaN, with n = 0, when there is none)."""
    model_errors = errors[errors["predictor"] == "model"]
    hits = _hits(predictions, "predicted_kilobytes")
    baseline_hits = _hits(predictions, "baseline_kilobytes")
    out: dict[str, float | int] = {
        "n_gifs": int(predictions["gif_sha"].nunique()),
        "n_rows": len(predictions),
        "model_median_ape": _stat(predictions["model_ape"], 50),
        "model_p90_ape": _stat(predictions["model_ape"], 90),
        "baseline_median_ape": _stat(predictions["baseline_ape"], 50),
        "baseline_p90_ape": _stat(predictions["baseline_ape"], 90),
        "worst_level_median_ape": _stat(model_errors["median_ape"], 100),
        "worst_level_p90_ape": _stat(model_errors["p90_ape"], 100),
        "hit_rate": float(hits.mean()) if len(hits) else float("nan"),
        "baseline_hit_rate": float(baseline_hits.mean()) if len(baseline_hits) else float("nan"),
        "n_targets": len(hits),
    }
    out["improvement"] = _ratio(out["baseline_median_ape"], out["model_median_ape"])
    out["improvement_p90"] = _ratio(out["baseline_p90_ape"], out["model_p90_ape"])
    return out


def evaluate(
    table: pd.DataFrame,
    scaler: Any,
    models: Mapping[str, Any],
    split: str = "test",
) -> Evaluation:
    """Model and baseline errors on ``split`` for every engine in ``models``.

    ``models`` maps engine → bundle dict (or anything with a ``.bundle``, e.g. ``TrainedEngine``).
    Renders of engines without a model are ignored. An empty split gives empty frames and NaN
    numbers with ``n_gifs = n_rows = 0``.
    """
    bundles = {engine: getattr(m, "bundle", m) for engine, m in models.items()}
    ratios = baseline_ratios(table)
    frames = []
    for engine in sorted(bundles):
        rows = table[(table["split"] == split) & (table["engine"] == engine)]
        frame = rows.reindex(columns=PREDICTION_COLUMNS).copy()
        frame["predicted_kilobytes"] = predicted_kilobytes(bundles[engine], scaler, rows)
        frame["baseline_kilobytes"] = baseline_kilobytes(rows, ratios)
        actual = rows[TARGET].to_numpy(np.float64)
        frame["model_ape"] = abs_pct_errors(actual, frame["predicted_kilobytes"].to_numpy())
        frame["baseline_ape"] = abs_pct_errors(actual, frame["baseline_kilobytes"].to_numpy())
        frames.append(frame)
    predictions = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    predictions = predictions.reindex(columns=PREDICTION_COLUMNS)
    errors = _errors(predictions)
    summary: dict[str, Any] = {"split": split, **_summary(predictions, errors)}
    summary["engines"] = {
        engine: _summary(
            predictions[predictions["engine"] == engine], errors[errors["engine"] == engine]
        )
        for engine in sorted(bundles)
    }
    return Evaluation(split=split, predictions=predictions, errors=errors, summary=summary)
