"""Small real curve models for tests: XGBoost regressors fitted on synthetic rows, both formulations.

The synthetic size law is known, so tests can tell a good model from a bad one: the log size
ratio falls with lossy, rises with colours and frame_keep, and depends on two GIF features.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd
import xgboost
from sklearn.preprocessing import StandardScaler

from giflab.dataset.columns import GIF_FEATURES, MODEL_INPUTS
from giflab.dataset.scaler import save_scaler
from giflab.features import CLIP_FEATURES, FEATURES_VERSION
from giflab.prediction.bundle import lzw_offset, make_bundle, make_offset
from giflab.prediction.export import export_models

LOSSY = (0, 20, 40, 60, 80, 100, 120)
COLORS = (256, 64, 16)
FRAME_KEEP = (1.0, 0.8)
# Inputs: GIF features free, lossy non-increasing, colors and frame_keep non-decreasing.
MONOTONE = (0,) * len(GIF_FEATURES) + (-1, 1, 1)
# An offset's correction as trained by default: free in lossy (the sum is made monotone).
FREE_IN_LOSSY = (0,) * len(GIF_FEATURES) + (0, 1, 1)
INTEGER_METADATA = {
    "orig_width": 640,
    "orig_height": 480,
    "orig_frames": 120,
    "orig_duration_ms": 10_000,
    "orig_n_colors": 256,
}


def gif_frame(n_gifs: int, seed: int) -> pd.DataFrame:
    """Raw ``GIF_FEATURES`` of ``n_gifs`` made-up GIFs (CLIP columns NaN, as without weights)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.uniform(0.0, 1.0, (n_gifs, len(GIF_FEATURES))), columns=GIF_FEATURES)
    frame["orig_kilobytes"] = rng.uniform(20.0, 2000.0, n_gifs)
    # Integer and boolean metadata hold whole values, as in the training table.
    for name, high in INTEGER_METADATA.items():
        frame[name] = rng.integers(1, high, n_gifs).astype(float)
    frame["orig_has_transparency"] = rng.integers(0, 2, n_gifs).astype(float)
    frame[list(CLIP_FEATURES)] = np.nan
    return frame


def raw_rows(n_gifs: int = 30, seed: int = 0) -> pd.DataFrame:
    """Raw ``MODEL_INPUTS`` for every GIF × variant, plus the true ``kilobytes``."""
    gifs = gif_frame(n_gifs, seed)
    variants = pd.DataFrame(
        [(lv, c, f) for lv in LOSSY for c in COLORS for f in FRAME_KEEP],
        columns=["lossy", "colors", "frame_keep"],
    )
    rows = gifs.merge(variants, how="cross")
    log_ratio = (
        -1.2 * rows["lossy"] / 120.0
        + 0.3 * np.log(rows["colors"] / 256.0)
        + 0.8 * (rows["frame_keep"] - 1.0)
        - 0.5 * rows[GIF_FEATURES[0]]
        + 0.2 * rows[GIF_FEATURES[1]]
    )
    rows["kilobytes"] = rows["orig_kilobytes"] * np.exp(log_ratio)
    return rows


def fit_scaler(rows: pd.DataFrame) -> StandardScaler:
    """A scaler over one row per GIF, fitted on a DataFrame (as ``giflab.dataset`` does)."""
    # All-NaN CLIP columns warn on 0/0; their NaN statistics are intended.
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return StandardScaler().fit(rows[list(GIF_FEATURES)].drop_duplicates())


def save_test_scaler(rows: pd.DataFrame, path) -> StandardScaler:
    """Fit and write ``scaler.pkl`` at ``path``; returns the scaler."""
    scaler = fit_scaler(rows)
    save_scaler(scaler, path, fingerprint="test")
    return scaler


def model_matrix(rows: pd.DataFrame, scaler: StandardScaler) -> tuple[np.ndarray, np.ndarray]:
    """(inputs in ``MODEL_INPUTS`` order with GIF features scaled, log size ratio target)."""
    scaled = scaler.transform(rows[list(GIF_FEATURES)])
    x = np.hstack([scaled, rows[["lossy", "colors", "frame_keep"]].to_numpy(dtype=float)])
    y = np.log(rows["kilobytes"] / rows["orig_kilobytes"]).to_numpy()
    return x, y


def _regressor(n_estimators: int, monotone: bool | tuple[int, ...]) -> xgboost.XGBRegressor:
    if monotone is True:
        monotone = MONOTONE
    return xgboost.XGBRegressor(
        n_estimators=n_estimators,
        max_depth=3,
        learning_rate=0.3,
        n_jobs=1,
        random_state=0,
        monotone_constraints=monotone or None,
    )


def joint_bundle(engine: str, x: np.ndarray, y: np.ndarray, n_estimators: int = 40) -> dict:
    """A ``joint`` bundle: one monotone regressor over every variant."""
    regressor = _regressor(n_estimators, monotone=True).fit(x, y)
    return make_bundle(
        engine=engine,
        formulation="joint",
        feature_names=MODEL_INPUTS,
        regressors={"all": regressor},
        lossy_levels=LOSSY,
        extra={"metrics": {"val_mape": 0.1}, "params": {"n_estimators": n_estimators}},
    )


def per_level_bundle(engine: str, x: np.ndarray, y: np.ndarray, n_estimators: int = 30) -> dict:
    """A ``per_level`` bundle: one regressor per lossy level, fitted on that level's rows."""
    lossy = x[:, MODEL_INPUTS.index("lossy")]
    regressors = {
        str(lv): _regressor(n_estimators, monotone=False).fit(x[lossy == lv], y[lossy == lv])
        for lv in LOSSY
    }
    return make_bundle(
        engine=engine,
        formulation="per_level",
        feature_names=MODEL_INPUTS,
        regressors=regressors,
        lossy_levels=LOSSY,
        extra={"metrics": {"val_mape": 0.2}},
    )


def build_test_models(
    root: Path,
    formulations: Mapping[str, str] = MappingProxyType(
        {"animately": "per_level", "gifsicle": "joint"}
    ),
    *,
    n_estimators: int = 40,
    seed: int = 0,
) -> Path:
    """Fit one bundle per engine, write ``root/scaler.pkl`` and export to ``root/models``."""
    rows = raw_rows(seed=seed)
    root.mkdir(parents=True, exist_ok=True)
    scaler = save_test_scaler(rows, root / "scaler.pkl")
    x, y = model_matrix(rows, scaler)
    make = {"joint": joint_bundle, "per_level": per_level_bundle}
    bundles = {e: make[f](e, x, y, n_estimators) for e, f in formulations.items()}
    if "gifsicle" in bundles:  # gifsicle's full-colour renders: the LZW offset, as trained
        offset = make_offset(MODEL_INPUTS, scaler)
        full = x[:, MODEL_INPUTS.index("colors")] >= 256
        correction = y[full] - lzw_offset(offset, x[full])
        # A correction trained monotone in lossy (bundles before correction_levels).
        offset["regressor"] = _regressor(n_estimators, monotone=True).fit(x[full], correction)
        bundles["gifsicle"]["offset"] = offset
    if "gifski" in bundles:  # no colour counts, and a correction free in lossy (the default)
        offset = make_offset(MODEL_INPUTS, scaler, engine="gifski")
        correction = y - lzw_offset(offset, x)
        offset["regressor"] = _regressor(n_estimators, FREE_IN_LOSSY).fit(x, correction)
        offset["correction_levels"] = list(LOSSY)
        bundles["gifski"]["offset"] = offset
    facts = {
        "dataset_version": f"test-dataset-{seed}",
        "code_version": "0.1.0+test",
        "metrics": {e: {"test_mape": 0.05, "test_rows": len(rows)} for e in bundles},
        "features_version": FEATURES_VERSION,
    }
    export_models(bundles, root / "scaler.pkl", root / "models", card_facts=facts)
    return root / "models"
