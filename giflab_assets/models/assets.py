"""Model assets: per-engine curve models trained, exported, evaluated and registered in MLflow.

``curve_models`` trains every engine's model on the train split (early-stopped on val) and
exports it to ``DATA_DIR/models`` (``<engine>.pkl``, native ``.ubj``, ``model_card.json``);
``model_evaluation`` loads those files through the verified loader, scores them on the test
split against the naive baseline, logs each engine's run to MLflow, registers the model as
``giflab-curve-<engine>`` (alias ``candidate``) and moves ``champion`` only when it wins on the
same test rows. Domain logic: ``giflab.prediction`` (docs/models.md).
"""

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    Output,
    asset,
)

from giflab.dataset.columns import MODEL_INPUTS, TARGET
from giflab_assets.dataset.assets import feature_scaler
from giflab_assets.owners import OWNERS
from giflab_assets.plots import markdown_table, png_markdown, write_png
from resources import GifLabResource, MlflowResource

if TYPE_CHECKING:
    from giflab.prediction.config import TrainConfig

BEATS_BASELINE_CHECK = "model_beats_baseline"


class CurveModelsConfig(Config):
    """Training knobs people change most; the rest are ``TrainConfig`` defaults."""

    formulation: str = "auto"
    learning_rate: float = 0.05
    max_depth: int = 6
    n_estimators: int = 2000
    early_stopping_rounds: int = 50

    def train_config(self) -> "TrainConfig":
        """The domain ``TrainConfig`` for this run."""
        from giflab.prediction.config import TrainConfig

        return TrainConfig(**self.model_dump())


def _fmt(x: float, unit: str = "") -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.1f}{unit}"


@asset(owners=OWNERS, deps=[feature_scaler], group_name="models", kinds={"xgboost"})
def curve_models(
    context: AssetExecutionContext,
    config: CurveModelsConfig,
    giflab: GifLabResource,
    training_table: pd.DataFrame,
) -> MaterializeResult:
    """Per-engine XGBoost models of the size curve (log size ratio from the GIF's features and
    the variant, monotone in lossy), exported to ``models/`` with a model card of sha256s."""
    # Training's libraries (scikit-learn, XGBoost) load here, not when the definitions are
    # imported: `giflab run`, the sensor and the UI's code server start without them.
    from giflab.dataset import load_scaler
    from giflab.features import FEATURES_VERSION
    from giflab.prediction.export import export_models, training_clip_models
    from giflab.prediction.train import train_all

    models_dir = giflab.settings().models_dir
    scaler = load_scaler(models_dir / "scaler.pkl")
    trained = train_all(training_table, scaler, config.train_config())
    versions = training_table[["dataset_version", "code_version"]].iloc[0]
    metrics = {
        engine: {f"val_median_ape_{f}": s for f, s in t.val_scores.items()}
        for engine, t in trained.items()
    }
    card = export_models(
        {engine: t.bundle for engine, t in trained.items()},
        models_dir / "scaler.pkl",
        models_dir,
        card_facts={
            "dataset_version": str(versions["dataset_version"]),
            "code_version": str(versions["code_version"]),
            "metrics": metrics,
            "train_config": config.train_config().model_dump(),
            "clip_models": training_clip_models(training_table),
            "features_version": FEATURES_VERSION,
        },
    )
    rows = []
    for engine, t in sorted(trained.items()):
        scores = " / ".join(_fmt(t.val_scores.get(f)) for f in ("joint", "per_level"))
        trees = t.best_iterations.get(t.formulation, {})
        rows.append((engine, t.formulation, scores, trees, t.n_train_gifs))
        for note in t.notes:
            context.log.warning(f"{engine}: {note}")
    return MaterializeResult(
        metadata={
            "engines": markdown_table(
                (
                    "engine",
                    "formulation",
                    "val median % (joint / per level)",
                    "trees",
                    "train GIFs",
                ),
                rows,
            ),
            "model_dir": MetadataValue.path(str(models_dir)),
            "files": MetadataValue.json(card.files),
            "dataset_version": card.dataset_version,
        }
    )


def median_ape(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Median absolute % error (the promotion score: lower is better); NaN without rows."""
    from giflab.prediction.train import abs_pct_errors

    errors = abs_pct_errors(truth, predicted)
    return float(np.median(errors)) if len(errors) else float("nan")


@asset(
    owners=OWNERS,
    deps=[curve_models],
    io_manager_key="sqlite_io_manager",
    group_name="models",
    kinds={"mlflow", "sqlite"},
    check_specs=[
        AssetCheckSpec(
            BEATS_BASELINE_CHECK,
            asset="model_evaluation",
            description="Every engine's model has a lower median error than the naive baseline "
            "on the test split.",
        )
    ],
)
def model_evaluation(
    context: AssetExecutionContext,
    giflab: GifLabResource,
    mlflow: MlflowResource,
    training_table: pd.DataFrame,
):
    """Test-split errors per engine and lossy level (model vs naive baseline), target-size hit
    rate and plots; each engine's run logged to MLflow and its model registered there."""
    from giflab.prediction.evaluate import evaluate
    from giflab.prediction.load import load_models
    from giflab.prediction.plots import curves_png, error_by_level_png, importance_png
    from giflab.prediction.registry import publish_curve_model
    from giflab.prediction.tracking import log_training_run

    settings = giflab.settings()
    models = load_models(settings.models_dir)  # sha256-verified before unpickling
    table = training_table
    result = evaluate(table, models.scaler, models.bundles, split="test")
    plots = {
        "curves": curves_png(result.predictions),
        "error_by_level": error_by_level_png(result.errors),
        "feature_importance": importance_png(models.bundles),
    }
    out = settings.data_dir / "reports"
    for name, png in plots.items():
        write_png(out / f"model_{name}.png", png)
    tracking = mlflow.settings()
    lines, promotions = [], {}
    for engine, bundle in sorted(models.bundles.items()):
        summary = result.summary["engines"][engine]
        numbers = {k: float(v) for k, v in summary.items() if np.isfinite(v)}
        run_id = log_training_run(
            tracking,
            engine=engine,
            params={
                "formulation": bundle["formulation"],
                **models.card.facts.get("train_config", {}),
            },
            metrics={f"test_{k}": v for k, v in numbers.items()}
            | {
                k: float(v)
                for k, v in models.card.engines[engine].get("metrics", {}).items()
                if v is not None and np.isfinite(v)
            },
            dataset_version=models.card.dataset_version,
            code_version=models.card.code_version,
            plots={f"{name}.png": png for name, png in plots.items()},
        )
        rows = table[table["engine"] == engine]
        test = rows[rows["split"] == "test"]
        promotion = publish_curve_model(
            tracking,
            engine,
            settings.models_dir,
            input_example=rows[list(MODEL_INPUTS)],
            test_inputs=test[list(MODEL_INPUTS)],
            test_kilobytes=test[TARGET].to_numpy(np.float64),
            score=median_ape,
            run_id=run_id,
        )
        promotions[engine] = {
            "version": promotion.version,
            "champion": promotion.promoted,
            "reason": promotion.reason,
        }
        lines.append(
            f"{engine:<20} test median {_fmt(summary['model_median_ape'], '%')} "
            f"p90 {_fmt(summary['model_p90_ape'], '%')} | baseline median "
            f"{_fmt(summary['baseline_median_ape'], '%')} | hit rate "
            f"{_fmt(100 * summary['hit_rate'], '%')} | {summary['n_gifs']} test GIFs | "
            f"v{promotion.version}{' champion' if promotion.promoted else ''}"
        )
    yield Output(
        result.errors,
        metadata={
            "lines": "\n".join(lines),
            "summary": MetadataValue.json(_json_safe(result.summary)),
            "promotions": MetadataValue.json(promotions),
            **{name: png_markdown(png, name) for name, png in plots.items()},
        },
    )
    losing = {
        engine: s
        for engine, s in result.summary["engines"].items()
        if not s["model_median_ape"] < s["baseline_median_ape"]
    }
    yield AssetCheckResult(
        check_name=BEATS_BASELINE_CHECK,
        passed=not losing,
        severity=AssetCheckSeverity.ERROR,
        metadata={"engines_not_beating_baseline": MetadataValue.json(sorted(losing))},
    )


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
