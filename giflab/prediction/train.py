"""Train one curve model per engine from the training table: XGBoost on the log size ratio.

Rows of the ``train`` split fit the trees; rows of the ``val`` split only choose how many trees
to keep (early stopping) and, with ``formulation="auto"``, which formulation to keep. The test
split is never read here. The scaler is the dataset's (``fit_scaler``: train GIFs only).
Formulations, constraints and fallbacks: docs/models.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xgboost

from giflab.dataset.columns import GIF_FEATURES, MODEL_INPUTS, TARGET
from giflab.errors import GifLabError
from giflab.prediction.bundle import (
    OFFSET_PROBES,
    VARIANT_INPUTS,
    lzw_offset,
    make_bundle,
    make_offset,
    model_inputs,
    predict_log_ratio,
)
from giflab.prediction.config import TrainConfig

log = logging.getLogger(__name__)

# Size never grows with more lossy compression, never shrinks with more colours or frames kept.
MONOTONE = {"lossy": -1, "colors": 1, "frame_keep": 1}


class TrainingError(GifLabError):
    """An engine's model cannot be trained (no train rows); carries the engine and the reason."""

    def __init__(self, engine: str, reason: str):
        self.engine = engine
        self.reason = reason
        super().__init__(f"{engine}: cannot train: {reason}")


@dataclass(frozen=True)
class TrainedEngine:
    """One engine's chosen bundle and how it was chosen.

    ``val_scores``: formulation → median absolute % error of kilobytes on val (NaN without val
    rows). ``best_iterations``: formulation → regressor key → index of the last tree kept
    (None when early stopping did not run for that regressor).
    """

    engine: str
    bundle: dict
    formulation: str
    val_scores: dict[str, float]
    best_iterations: dict[str, dict[str, int | None]]
    early_stopped: bool
    n_train_rows: int
    n_val_rows: int
    n_train_gifs: int
    n_val_gifs: int
    notes: tuple[str, ...] = ()


def model_matrix(rows: pd.DataFrame, scaler: Any) -> np.ndarray:
    """``MODEL_INPUTS`` rows: the scaled ``GIF_FEATURES`` then raw lossy, colors, frame_keep."""
    features = rows[list(GIF_FEATURES)].to_numpy(dtype=np.float64, na_value=np.nan)
    variants = rows[list(VARIANT_INPUTS)].to_numpy(dtype=np.float64)
    return model_inputs(scaler, features, variants)


def log_size_ratio(rows: pd.DataFrame) -> np.ndarray:
    """The target: ``ln(kilobytes / orig_kilobytes)`` per row."""
    return np.log(rows[TARGET].to_numpy(np.float64) / rows["orig_kilobytes"].to_numpy(np.float64))


def abs_pct_errors(actual: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """``100 · |predicted − actual| / actual`` per row."""
    actual = np.asarray(actual, dtype=np.float64)
    return 100.0 * np.abs(np.asarray(predicted, dtype=np.float64) - actual) / actual


def _constraints(lossy_free: bool) -> tuple[int, ...]:
    # Lossy unconstrained for a per-level model (lossy is constant inside it) and for a free
    # offset correction: their monotonicity in lossy comes from the min or cap over levels.
    signs = {**MONOTONE, "lossy": 0} if lossy_free else MONOTONE
    return tuple(signs.get(name, 0) for name in MODEL_INPUTS)


def _fit(
    config: TrainConfig,
    data: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray] | None,
    constraints: tuple[int, ...],
) -> tuple[xgboost.XGBRegressor, int | None]:
    """One regressor; early-stopped on ``val`` when given, else ``fallback_n_estimators`` trees."""
    params = config.xgb_params()
    if val is None:
        params["n_estimators"] = config.fallback_n_estimators
    regressor = xgboost.XGBRegressor(
        **params,
        monotone_constraints=constraints,
        early_stopping_rounds=config.early_stopping_rounds if val is not None else None,
    )
    regressor.fit(*data, eval_set=[val] if val is not None else None, verbose=False)
    return regressor, (int(regressor.best_iteration) if val is not None else None)


def _split_xy(rows: pd.DataFrame, scaler: Any) -> tuple[np.ndarray, np.ndarray]:
    return model_matrix(rows, scaler), log_size_ratio(rows)


def _regressors(
    formulation: str,
    train: pd.DataFrame,
    val: pd.DataFrame | None,
    scaler: Any,
    config: TrainConfig,
) -> tuple[dict[str, xgboost.XGBRegressor], dict[str, int | None], list[int]]:
    """The regressors of one formulation, their best iterations and the lossy levels trained."""
    levels = sorted(int(v) for v in train["lossy"].unique())
    if formulation == "joint":
        val_xy = _split_xy(val, scaler) if val is not None else None
        model, best = _fit(config, _split_xy(train, scaler), val_xy, _constraints(False))
        return {"all": model}, {"all": best}, levels
    models: dict[str, xgboost.XGBRegressor] = {}
    bests: dict[str, int | None] = {}
    for level in levels:
        at_level = val[val["lossy"] == level] if val is not None else None
        if at_level is not None and at_level["gif_sha"].nunique() < config.min_val_gifs:
            at_level = None  # too few val GIFs at this level: fixed tree count for this one
        val_xy = _split_xy(at_level, scaler) if at_level is not None else None
        key = str(level)
        train_xy = _split_xy(train[train["lossy"] == level], scaler)
        models[key], bests[key] = _fit(config, train_xy, val_xy, _constraints(True))
    return models, bests, levels


def _offset_model(
    train: pd.DataFrame,
    val: pd.DataFrame | None,
    scaler: Any,
    config: TrainConfig,
    engine: str = "gifsicle",
) -> tuple[dict, int | None] | None:
    """``engine``'s offset model (``bundle["offset"]``): its correction regressor fitted on the
    train renders at the probes' colour counts or more (16 and up), early-stopped on the val
    ones when given; None without such train renders."""
    offset = make_offset(MODEL_INPUTS, scaler, engine=engine)
    train = train[train["colors"] >= offset["min_colors"]]
    if train.empty:
        return None

    def xy(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        x = model_matrix(rows, scaler)
        return x, log_size_ratio(rows) - lzw_offset(offset, x)

    if val is not None:
        val = val[val["colors"] >= offset["min_colors"]]
        if val["gif_sha"].nunique() < config.min_val_gifs:
            val = None
    if config.offset_correction == "off":
        offset["regressor"] = zero_correction(xy(train)[0])
        return offset, None
    constraints = _constraints(False)
    if config.offset_correction_lossy == "free":
        # Free in lossy: the sum is made monotone over the trained and the probed levels
        # (offset_log_ratio); the probed ones so that none of the estimate's knots is lost.
        constraints = _constraints(lossy_free=True)
        levels = {int(v) for v in train["lossy"].unique()} | set(offset["levels"])
        offset["correction_levels"] = sorted(levels)
    offset["regressor"], best = _fit(
        config, xy(train), xy(val) if val is not None else None, constraints
    )
    return offset, best


def zero_correction(x: np.ndarray) -> xgboost.XGBRegressor:
    """A correction regressor that predicts 0 for every row (one tree fitted on zeros, base
    score 0): the offset's estimate alone, in the same form as a fitted correction (pickle,
    native file, card)."""
    regressor = xgboost.XGBRegressor(n_estimators=1, max_depth=1, base_score=0.0, n_jobs=1)
    regressor.fit(x[:2], np.zeros(min(2, len(x))))
    return regressor


def _val_score(bundle: dict, val: pd.DataFrame, scaler: Any) -> float:
    """Median absolute % error of predicted kilobytes over ``val`` (NaN without rows)."""
    if val.empty:
        return float("nan")
    predicted = val["orig_kilobytes"].to_numpy(np.float64) * np.exp(
        predict_log_ratio(bundle, model_matrix(val, scaler))
    )
    return float(np.median(abs_pct_errors(val[TARGET].to_numpy(np.float64), predicted)))


def _drop_correction_unless_it_helps(
    bundle: dict,
    val: pd.DataFrame,
    scaler: Any,
    scores: dict[str, float],
    chosen: str,
    notes: list[str],
) -> None:
    """Under ``offset_correction="auto"``: replace the offset's correction by zero when the
    estimate alone has the lower mean absolute log error over the val renders — the mean, not
    the median, since a correction that helps most GIFs a little and a few a lot the wrong way
    is what it guards against. ``<formulation>_offset`` stays the val score of the bundle as
    returned; the other choice's is recorded as ``<formulation>_offset_with_correction`` or
    ``<formulation>_offset_without_correction``."""
    x = model_matrix(val, scaler)
    actual = log_size_ratio(val)
    fitted = bundle["offset"]["regressor"]
    with_it = float(np.mean(np.abs(predict_log_ratio(bundle, x) - actual)))
    corrected_score = scores[f"{chosen}_offset"]
    bundle["offset"]["regressor"] = zero_correction(x)
    without = float(np.mean(np.abs(predict_log_ratio(bundle, x) - actual)))
    uncorrected_score = _val_score(bundle, val, scaler)
    if without < with_it:
        scores[f"{chosen}_offset"] = uncorrected_score
        scores[f"{chosen}_offset_with_correction"] = corrected_score
        notes.append(
            f"offset correction dropped: val mean |ln error| {without:.3f} without it, "
            f"{with_it:.3f} with it"
        )
    else:
        bundle["offset"]["regressor"] = fitted
        scores[f"{chosen}_offset_without_correction"] = uncorrected_score


def _choose(config: TrainConfig, scores: dict[str, float]) -> str:
    """The configured formulation, or under "auto" the lower val score (joint on ties and NaN)."""
    if config.formulation != "auto":
        return config.formulation
    per_level = scores.get("per_level", float("nan"))
    joint = scores.get("joint", float("nan"))
    return "per_level" if per_level < joint else "joint"  # NaN compares False: joint


def train_engine(
    table: pd.DataFrame, scaler: Any, engine: str, config: TrainConfig | None = None
) -> TrainedEngine:
    """Train ``engine``'s curve model on the train split, early-stopped on the val split.

    Raises ``TrainingError`` when the engine has no train rows. With fewer than
    ``config.min_val_gifs`` val GIFs (overall, or at a per-level model's level) a regressor grows
    ``fallback_n_estimators`` trees instead; with no val rows "auto" keeps "joint". ``notes``
    says which fallback was taken.
    """
    config = config or TrainConfig()
    rows = table[table["engine"] == engine]
    train = rows[rows["split"] == "train"]
    val_rows = rows[rows["split"] == "val"]
    if train.empty:
        raise TrainingError(engine, "no rows in the train split")
    notes: list[str] = []
    n_val_gifs = int(val_rows["gif_sha"].nunique())
    stop = config.early_stopping_rounds is not None and n_val_gifs >= config.min_val_gifs
    if config.early_stopping_rounds is None:
        notes.append(f"early stopping off: {config.fallback_n_estimators} trees")
    elif not stop:
        notes.append(
            f"{n_val_gifs} val GIFs (< {config.min_val_gifs}): no early stopping, "
            f"{config.fallback_n_estimators} trees"
        )
    candidates = ["joint", "per_level"] if config.formulation == "auto" else [config.formulation]
    if config.formulation == "auto" and val_rows.empty:
        candidates = ["joint"]
        notes.append("no val rows: formulation 'joint' kept without comparison")
    bundles: dict[str, dict] = {}
    bests: dict[str, dict[str, int | None]] = {}
    scores: dict[str, float] = {}
    for formulation in candidates:
        models, bests[formulation], levels = _regressors(
            formulation, train, val_rows if stop else None, scaler, config
        )
        bundles[formulation] = make_bundle(
            engine=engine,
            formulation=formulation,
            feature_names=MODEL_INPUTS,
            regressors=models,
            lossy_levels=levels,
        )
        scores[formulation] = _val_score(bundles[formulation], val_rows, scaler)
    chosen = _choose(config, scores)
    bundle = bundles[chosen]
    if engine in config.lzw_offset_engines:
        fitted = _offset_model(train, val_rows if stop else None, scaler, config, engine)
        if fitted is None:
            least = (OFFSET_PROBES[engine][1] or (1,))[-1]
            notes.append(f"no train renders at {least}+ colours: no LZW offset")
        else:
            bundle["offset"], bests[chosen]["offset"] = fitted
            scores[f"{chosen}_offset"] = _val_score(bundle, val_rows, scaler)
            if config.offset_correction == "auto" and not val_rows.empty:
                _drop_correction_unless_it_helps(bundle, val_rows, scaler, scores, chosen, notes)
    counts = {
        "n_train_rows": len(train),
        "n_val_rows": len(val_rows),
        "n_train_gifs": int(train["gif_sha"].nunique()),
        "n_val_gifs": n_val_gifs,
    }
    bundle["extra"] = {
        "params": config.model_dump(),
        "metrics": {f"val_median_ape_{f}": s for f, s in sorted(scores.items())},
        "best_iterations": bests[chosen],
        "early_stopped": stop,
        "notes": list(notes),
        **counts,
    }
    return TrainedEngine(
        engine=engine,
        bundle=bundle,
        formulation=chosen,
        val_scores=scores,
        best_iterations=bests,
        early_stopped=stop,
        notes=tuple(notes),
        **counts,
    )


def train_all(
    table: pd.DataFrame, scaler: Any, config: TrainConfig | None = None
) -> dict[str, TrainedEngine]:
    """``{engine: TrainedEngine}`` for every engine of the table with train rows (sorted).

    An engine whose renders are all in val/test cannot be trained; it is logged and left out.
    """
    trained: dict[str, TrainedEngine] = {}
    for engine in sorted(table["engine"].unique()):
        try:
            trained[engine] = train_engine(table, scaler, engine, config)
        except TrainingError as e:
            log.warning("%s", e)
    return trained
