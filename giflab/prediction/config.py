"""How the curve models are trained: XGBoost hyperparameters and the formulation, as data.

One ``TrainConfig`` is read once (defaults, a Dagster config, CLI flags) and passed to
``train_engine``/``train_all``. Everything that makes a fit reproducible is fixed here: the
seed, ``tree_method="hist"``, the thread count. Reference: docs/models.md.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from giflab.prediction.bundle import OFFSET_PROBES


class TrainConfig(BaseModel):
    """XGBoost hyperparameters, early stopping and the formulation of every engine's model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # "auto" trains both formulations and keeps the one with the lower validation error.
    formulation: Literal["auto", "joint", "per_level"] = "auto"
    # An upper bound: early stopping on the val split picks the number of trees actually used.
    n_estimators: int = Field(2000, ge=1)
    learning_rate: float = Field(0.05, gt=0, le=1)
    max_depth: int = Field(6, ge=1, le=16)
    min_child_weight: float = Field(1.0, ge=0)
    subsample: float = Field(0.8, gt=0, le=1)
    colsample_bytree: float = Field(0.8, gt=0, le=1)
    reg_lambda: float = Field(1.0, ge=0)
    # Stop when the val mean absolute error of the log size ratio has not improved for this
    # many trees; None never stops early (then ``fallback_n_estimators`` trees are grown).
    early_stopping_rounds: int | None = Field(50, ge=1)
    # Early stopping on fewer val GIFs than this tunes the tree count to an anecdote (on 7 val
    # GIFs it kept 7-18 trees and tripled the test error; docs/models.md).
    min_val_gifs: int = Field(20, ge=1)
    # Trees grown when early stopping does not run (too few val GIFs, or switched off).
    fallback_n_estimators: int = Field(400, ge=1)
    # Engines whose renders (16 colours and up) are predicted as GifLab's own estimate of the
    # engine's output (the LZW offset: its probes, ``bundle.OFFSET_PROBES``) plus a correction
    # model. ffmpeg's cross-validated median 11.0 -> 1.5 % with it, ImageMagick's 16.7 -> 8.3 %
    # and gifski's 8.6-11.2 -> 3.3-3.4 % on natural GIFs (docs/models.md).
    lzw_offset_engines: tuple[str, ...] = ("gifsicle", "ffmpeg", "imagemagick", "gifski")
    # The offset's correction model: "on" always, "off" never (the estimate alone), "auto" kept
    # only when it lowers the val error (median over the val renders; kept without val rows).
    # ImageMagick's estimate alone is closer than with a correction fitted on 66 GIFs (natural
    # p90 18.5 % vs 35-46 %, docs/models.md).
    offset_correction: Literal["auto", "on", "off"] = "auto"
    # "monotone": the correction regressor itself never rises with lossy; "free": it may, and
    # the estimate plus correction is made monotone over the trained and probed lossy levels
    # (5-fold CV: gifski median 2.07 -> 1.72 %, ffmpeg worst level 1.69 -> 1.29 %; models.md).
    offset_correction_lossy: Literal["monotone", "free"] = "free"
    random_state: int = 0

    @field_validator("lzw_offset_engines")
    @classmethod
    def _probed(cls, engines: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(engines) - set(OFFSET_PROBES))
        if unknown:
            raise ValueError(
                f"no GifLab probes emulate {unknown}: an offset needs one of {sorted(OFFSET_PROBES)}"
            )
        return engines

    # One thread by default: the Dagster executor and xdist already run one process per core.
    n_jobs: int = Field(1, ge=1)

    def xgb_params(self) -> dict[str, Any]:
        """Keyword arguments for ``xgboost.XGBRegressor`` (no constraints, no early stopping)."""
        return {
            "n_estimators": self.n_estimators,
            "learning_rate": self.learning_rate,
            "max_depth": self.max_depth,
            "min_child_weight": self.min_child_weight,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "reg_lambda": self.reg_lambda,
            "random_state": self.random_state,
            "n_jobs": self.n_jobs,
            # hist is exact-reproducible on CPU for a fixed seed and thread count.
            "tree_method": "hist",
            "objective": "reg:squarederror",
            # The score is a median: MAE, not RMSE, which one junk-laden val GIF would rule.
            "eval_metric": "mae",
        }
