"""The one Definitions object: assets, sensors, resources and the executor, set once."""

from __future__ import annotations

import os

from dagster import Definitions, ExecutorDefinition, multiprocess_executor

from giflab.config import default_data_dir
from giflab_assets.compression.assets import compression_runs
from giflab_assets.dataset.assets import (
    correlation_report,
    dataset_export,
    feature_scaler,
    outlier_report,
    training_table,
)
from giflab_assets.features.assets import gif_features
from giflab_assets.ingest.assets import gif_metadata
from giflab_assets.ingest.sensors import raw_gifs_sensor
from giflab_assets.models.assets import curve_models, model_evaluation
from io_managers import SqliteIOManager
from resources import ClipResource, EnginesResource, GifLabResource, MlflowResource

PER_GIF_ASSETS = [gif_metadata, gif_features, compression_runs]
DATASET_ASSETS = [
    training_table,
    feature_scaler,
    dataset_export,
    outlier_report,
    correlation_report,
]
MODEL_ASSETS = [curve_models, model_evaluation]
ASSETS = [*PER_GIF_ASSETS, *DATASET_ASSETS, *MODEL_ASSETS]


def build_resources(
    data_dir: str | None = None,
    engines: EnginesResource | None = None,
    clip: ClipResource | None = None,
    mlflow: MlflowResource | None = None,
    **giflab_config,
) -> dict:
    """Resources for a data directory (default: ``$GIFLAB_DATA_DIR`` or ``./data``)."""
    giflab = GifLabResource(data_dir=str(data_dir or default_data_dir()), **giflab_config)
    return {
        "giflab": giflab,
        "engines": engines or EnginesResource(),
        "clip": clip or ClipResource(),
        "mlflow": mlflow or MlflowResource(data_dir=giflab.data_dir),
        "sqlite_io_manager": SqliteIOManager(db_path=str(giflab.settings().db_path)),
    }


EXECUTOR_ENV = "GIFLAB_EXECUTOR"
CELERY_BROKER_ENV = "GIFLAB_CELERY_BROKER"
CELERY_BACKEND_ENV = "GIFLAB_CELERY_BACKEND"


def build_executor(kind: str | None = None) -> ExecutorDefinition:
    """The executor of runs launched by Dagster (UI, ``dagster asset materialize``, sensor):
    ``$GIFLAB_EXECUTOR`` = ``multiprocess`` (default) or ``celery`` (docs/scale-out.md)."""
    kind = kind or os.environ.get(EXECUTOR_ENV) or "multiprocess"
    if kind == "multiprocess":
        # Each step runs its own worker pool, so few steps at once; the pool size is the knob.
        return multiprocess_executor.configured({"max_concurrent": 2})
    if kind == "celery":
        from dagster_celery import celery_executor

        return celery_executor.configured(
            {
                "broker": {"env": CELERY_BROKER_ENV},
                "backend": {"env": CELERY_BACKEND_ENV},
                "include": ["giflab_assets.definitions"],
            }
        )
    raise ValueError(f"{EXECUTOR_ENV}={kind!r}: expected 'multiprocess' or 'celery'")


defs = Definitions(
    assets=ASSETS,
    sensors=[raw_gifs_sensor],
    resources=build_resources(),
    executor=build_executor(),
)
