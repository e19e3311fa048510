"""MLflow tracking for the curve models: settings, scoped URIs, training runs.

mlflow is imported inside the functions, so importing this module costs nothing for code that
never tracks. MLflow keeps its URIs in process globals (and environment variables): the
functions here pass them to an ``MlflowClient`` where they can, and otherwise set them only for
the duration of a call (``mlflow_uris``) and restore them after, so two settings in one process
(tests, or a CLI beside Dagster) never leak into each other. Not thread-safe for that reason.
Registering and promoting models: ``giflab.prediction.registry``.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXPERIMENT_NAME = "giflab-curves"
# Set (unless already set) only while this package calls mlflow: no usage telemetry (GifLab
# never talks to the network on its own), no scan of the env vars predict() reads at logging
# time, no progress bars on stderr.
_CALL_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_RECORD_ENV_VARS_IN_MODEL_LOGGING": "false",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
_URI_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@dataclass(frozen=True)
class MlflowSettings:
    """Where runs, artifacts and registered models go; ``registry_uri`` None = tracking URI."""

    tracking_uri: str
    registry_uri: str | None = None
    artifact_location: str | None = None
    experiment_name: str = EXPERIMENT_NAME

    @classmethod
    def for_data_dir(cls, data_dir: Path | str, **overrides: Any) -> MlflowSettings:
        """``sqlite:///<data_dir>/mlflow.db`` with artifacts in ``<data_dir>/mlruns``."""
        root = Path(data_dir).expanduser().resolve()
        base = {
            "tracking_uri": f"sqlite:///{root / 'mlflow.db'}",
            "artifact_location": (root / "mlruns").as_uri(),
        }
        return cls(**{**base, **overrides})

    @property
    def resolved_registry_uri(self) -> str:
        """The registry URI actually used."""
        return self.registry_uri or self.tracking_uri


@contextmanager
def mlflow_env() -> Iterator[None]:
    """``_CALL_ENV`` in the environment for the block (values already set win), then restored.

    Every function that calls mlflow runs inside it (it also works as a decorator).
    """
    saved = {k: os.environ.get(k) for k in _CALL_ENV}
    for key, value in _CALL_ENV.items():
        os.environ.setdefault(key, value)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _import_mlflow():
    # Telemetry is decided when mlflow is first imported: import it under _CALL_ENV.
    with mlflow_env():
        import mlflow

    return mlflow


def _ensure_sqlite_dir(uri: str) -> None:
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)


@contextmanager
def mlflow_uris(settings: MlflowSettings) -> Iterator[Any]:
    """mlflow, with ``settings``' URIs set globally for the block and restored after."""
    mlflow = _import_mlflow()
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    _ensure_sqlite_dir(settings.tracking_uri)
    _ensure_sqlite_dir(settings.resolved_registry_uri)
    saved_env = {k: os.environ.get(k) for k in _URI_ENV}
    # The public setters cannot restore "unset" (they write env vars), so keep the raw globals.
    saved = (tracking_utils._tracking_uri, registry_utils._registry_uri)
    with mlflow_env():
        mlflow.set_tracking_uri(settings.tracking_uri)
        mlflow.set_registry_uri(settings.resolved_registry_uri)
        try:
            yield mlflow
        finally:
            mlflow.set_tracking_uri(saved[0])
            registry_utils._registry_uri = saved[1]
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def mlflow_client(settings: MlflowSettings):
    """An ``MlflowClient`` on ``settings``' tracking and registry URIs (no global state)."""
    _import_mlflow()
    from mlflow import MlflowClient

    _ensure_sqlite_dir(settings.tracking_uri)
    _ensure_sqlite_dir(settings.resolved_registry_uri)
    return MlflowClient(settings.tracking_uri, settings.resolved_registry_uri)


def experiment_id(settings: MlflowSettings) -> str:
    """The id of ``settings.experiment_name``, created with ``artifact_location`` if absent."""
    from mlflow.exceptions import MlflowException

    client = mlflow_client(settings)
    found = client.get_experiment_by_name(settings.experiment_name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(
            settings.experiment_name, artifact_location=settings.artifact_location
        )
    except MlflowException:
        found = client.get_experiment_by_name(settings.experiment_name)  # created meanwhile
        if found is None:
            raise
        return found.experiment_id


@mlflow_env()
def log_training_run(
    settings: MlflowSettings,
    *,
    engine: str,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    dataset_version: str,
    code_version: str,
    plots: Mapping[str, bytes] | None = None,
    tags: Mapping[str, str] | None = None,
) -> str:
    """Record one engine's training run (params, metrics, PNG ``plots`` by name, versions as
    tags) as a finished run; returns its run id."""
    from mlflow.entities import Metric, Param, RunTag

    client = mlflow_client(settings)
    all_tags = {
        "giflab.engine": engine,
        "giflab.dataset_version": dataset_version,
        "giflab.code_version": code_version,
        **(tags or {}),
    }
    run = client.create_run(experiment_id(settings), run_name=f"train-{engine}", tags=all_tags)
    run_id = run.info.run_id
    try:
        now = int(time.time() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in sorted(metrics.items())],
            params=[Param(k, str(v)) for k, v in sorted(params.items())],
            tags=[RunTag(k, str(v)) for k, v in sorted(all_tags.items())],
        )
        if plots:
            with tempfile.TemporaryDirectory() as tmp:
                for name, png in plots.items():
                    file_name = Path(name).name if name.endswith(".png") else f"{name}.png"
                    (Path(tmp) / file_name).write_bytes(png)
                client.log_artifacts(run_id, tmp, "plots")
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    return run_id
