"""MLflow with a real SQLite store per test: runs, registration, champion/candidate, isolation."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from giflab.dataset.columns import MODEL_INPUTS
from giflab.prediction.load import ModelFileError, load_models
from giflab.prediction.pyfunc_model import predict_frame
from giflab.prediction.registry import (
    CANDIDATE,
    CHAMPION,
    model_input_frame,
    promote_if_better,
    publish_curve_model,
    register_curve_model,
)
from giflab.prediction.tracking import MlflowSettings, log_training_run, mlflow_uris
from resources import MlflowResource
from tests.curve_models import build_test_models, raw_rows

NAME = "giflab-curve-gifsicle"


def mean_abs_log_error(truth: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean(np.abs(np.log(predicted / truth))))


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory) -> Path:
    """An MLflow SQLite database with its tables created once (6 s); tests copy it (ms)."""
    db = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    uri = f"sqlite:///{db}"
    MlflowClient(uri, uri).search_experiments()
    return db


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """Exported gifsicle models of three qualities (joint formulation, more trees = better)."""
    root = tmp_path_factory.mktemp("mlflow-models")
    return {
        quality: build_test_models(root / quality, {"gifsicle": "joint"}, n_estimators=n)
        for quality, n in (("poor", 2), ("fair", 6), ("good", 60))
    }


@pytest.fixture(scope="module")
def test_rows():
    rows = raw_rows(n_gifs=8, seed=7)
    return model_input_frame(rows).assign(kilobytes=rows["kilobytes"].to_numpy())


@pytest.fixture
def settings(tmp_path, empty_store, monkeypatch):
    """Settings on a private store; fails if anything lands in the working directory, if
    MLflow's process-wide URIs or environment are left changed, or if a socket connects."""
    connects = []

    def refuse(sock, address, *args):
        connects.append(address)
        raise OSError(f"network refused in tests: {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    data = tmp_path / "data"
    data.mkdir()
    shutil.copyfile(empty_store, data / "mlflow.db")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    before = (
        {k: v for k, v in os.environ.items() if k.startswith("MLFLOW_")},
        mlflow.get_tracking_uri(),
        mlflow.get_registry_uri(),
    )
    yield MlflowSettings.for_data_dir(data)
    after = (
        {k: v for k, v in os.environ.items() if k.startswith("MLFLOW_")},
        mlflow.get_tracking_uri(),
        mlflow.get_registry_uri(),
    )
    assert after == before
    assert list(cwd.iterdir()) == []
    assert connects == []


def _publish(settings, model_dir, rows, **kwargs):
    return publish_curve_model(
        settings,
        "gifsicle",
        model_dir,
        input_example=rows,
        test_inputs=rows,
        test_kilobytes=rows["kilobytes"],
        score=mean_abs_log_error,
        **kwargs,
    )


def test_registered_champion_loads_by_alias_and_predicts_kilobytes(settings, models, test_rows):
    run_id = log_training_run(
        settings,
        engine="gifsicle",
        params={"n_estimators": 60, "max_depth": 3},
        metrics={"test_mape": 0.04},
        dataset_version="test-dataset-0",
        code_version="0.1.0+test",
        plots={"calibration": b"\x89PNG\r\n\x1a\nfake", "residuals.png": b"\x89PNG\r\n\x1a\n2"},
    )
    promotion = _publish(settings, models["good"], test_rows, run_id=run_id)
    assert (promotion.version, promotion.promoted, promotion.reason) == (
        "1",
        True,
        "no champion yet",
    )
    assert promotion.champion_version is None

    with mlflow_uris(settings):
        champion = mlflow.pyfunc.load_model(f"models:/{NAME}@{CHAMPION}")
    predicted = champion.predict(test_rows.drop(columns="kilobytes"))
    expected = predict_frame(load_models(models["good"]), "gifsicle", test_rows)
    np.testing.assert_array_equal(np.asarray(predicted), expected)
    assert promotion.candidate_score == pytest.approx(
        mean_abs_log_error(test_rows["kilobytes"].to_numpy(), expected)
    )
    assert champion.metadata.get_input_schema().input_names() == list(MODEL_INPUTS)

    client = MlflowClient(settings.tracking_uri, settings.resolved_registry_uri)
    version = client.get_model_version_by_alias(NAME, CANDIDATE)
    assert str(version.version) == str(client.get_model_version_by_alias(NAME, CHAMPION).version)
    assert str(version.version) == "1"
    assert version.run_id == run_id
    assert version.tags["giflab.dataset_version"] == "test-dataset-0"
    assert version.tags["giflab.formulation"] == "joint"
    assert version.description.startswith("formulation joint; dataset test-dataset-0;")
    assert client.get_registered_model(NAME).description.startswith(
        "GifLab compression-curve model for gifsicle"
    )
    run = client.get_run(run_id)
    # MLflow adds the pyfunc's model_config (the engine) to the run it is logged to.
    assert run.data.params == {"n_estimators": "60", "max_depth": "3", "engine": "gifsicle"}
    assert run.data.metrics == {"test_mape": 0.04}
    assert run.data.tags["giflab.code_version"] == "0.1.0+test"
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "train-gifsicle"  # registering into it keeps the training name
    plots = sorted(a.path for a in client.list_artifacts(run_id, "plots"))
    assert plots == ["plots/calibration.png", "plots/residuals.png"]
    # Artifacts live under the data folder, not in the working directory.
    assert run.info.artifact_uri.startswith(
        (Path(settings.tracking_uri[10:]).parent / "mlruns").as_uri()
    )


def _alias(client, alias: str) -> str:
    return str(client.get_model_version_by_alias(NAME, alias).version)


def test_a_worse_version_is_candidate_only_and_a_better_one_takes_champion(
    settings, models, test_rows, capfd
):
    first = _publish(settings, models["fair"], test_rows)
    worse = _publish(settings, models["poor"], test_rows)
    # MLflow's own registration prints are held back (the CLI reports versions and aliases).
    err = capfd.readouterr().err
    assert "Successfully registered model" not in err and "Created version" not in err
    assert first.promoted and not worse.promoted
    assert (worse.version, worse.champion_version) == ("2", "1")
    assert worse.candidate_score > worse.champion_score == pytest.approx(first.candidate_score)
    assert "not better than champion v1" in worse.reason
    client = MlflowClient(settings.tracking_uri, settings.resolved_registry_uri)
    assert _alias(client, CANDIDATE) == "2" and _alias(client, CHAMPION) == "1"

    better = _publish(settings, models["good"], test_rows)
    assert better.promoted and better.version == "3"
    assert better.candidate_score < better.champion_score == pytest.approx(first.candidate_score)
    assert _alias(client, CANDIDATE) == _alias(client, CHAMPION) == "3"
    # Scoring the champion again changes nothing.
    again = promote_if_better(
        settings,
        "gifsicle",
        "3",
        test_inputs=test_rows,
        test_kilobytes=test_rows["kilobytes"],
        score=mean_abs_log_error,
    )
    assert (again.promoted, again.reason) == (False, "already the champion")


def test_a_tampered_registry_copy_is_refused(settings, models, test_rows):
    version = register_curve_model(settings, "gifsicle", models["good"], input_example=test_rows)
    stored = list((Path(settings.tracking_uri[10:]).parent / "mlruns").rglob("gifsicle.pkl"))
    assert len(stored) == 1
    data = bytearray(stored[0].read_bytes())
    data[len(data) // 2] ^= 0x01
    stored[0].write_bytes(bytes(data))
    with (
        mlflow_uris(settings),
        pytest.raises(ModelFileError, match=r"gifsicle\.pkl: sha256_mismatch"),
    ):
        mlflow.pyfunc.load_model(f"models:/{NAME}/{version}")


def test_scoped_uris_are_restored_after_an_error(settings):
    with pytest.raises(RuntimeError), mlflow_uris(settings):
        assert mlflow.get_tracking_uri() == settings.tracking_uri
        assert os.environ["MLFLOW_TRACKING_URI"] == settings.tracking_uri
        raise RuntimeError("boom")
    # The settings fixture checks that URIs and environment are back as they were.


def test_resource_defaults_to_the_data_folder_and_takes_remote_uris(tmp_path):
    local = MlflowResource(data_dir=str(tmp_path)).settings()
    assert local.tracking_uri == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert local.resolved_registry_uri == local.tracking_uri
    assert local.artifact_location == (tmp_path.resolve() / "mlruns").as_uri()
    assert local.experiment_name == "giflab-curves"
    assert MlflowResource(data_dir=str(tmp_path)).resolved_tracking_uri() == local.tracking_uri
    remote = MlflowResource(
        data_dir=str(tmp_path),
        tracking_uri="http://mlflow.internal:5000",
        registry_uri="http://registry.internal:5000",
        experiment_name="curves-staging",
    ).settings()
    assert remote == MlflowSettings(
        tracking_uri="http://mlflow.internal:5000",
        registry_uri="http://registry.internal:5000",
        artifact_location=None,
        experiment_name="curves-staging",
    )
    moved = MlflowResource(
        data_dir=str(tmp_path), artifact_location="s3://bucket/giflab"
    ).settings()
    assert (moved.tracking_uri, moved.artifact_location) == (
        local.tracking_uri,
        "s3://bucket/giflab",
    )
