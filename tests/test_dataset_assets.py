"""The dataset and report assets through a real Dagster instance on a real GifLab database."""

import shutil
import sqlite3

import pytest
from dagster import DagsterInstance, materialize

from giflab.dataset import dataset_version, load_scaler, read_export
from giflab_assets.definitions import ASSETS, DATASET_ASSETS, build_resources
from tests.dataset_db import dataset_db

SELECTION = [a.key.path[-1] for a in DATASET_ASSETS]


@pytest.fixture
def data_dir(tmp_path):
    shutil.copy(dataset_db(), tmp_path / "giflab.db")
    return tmp_path


def _materialize(data_dir, instance):
    result = materialize(
        ASSETS,
        instance=instance,
        resources=build_resources(str(data_dir), workers=1),
        selection=SELECTION,
    )
    assert result.success
    return result


def test_dataset_assets_write_table_scaler_exports_and_reports(data_dir):
    instance = DagsterInstance.ephemeral()
    result = _materialize(data_dir, instance)
    with sqlite3.connect(data_dir / "giflab.db") as conn:
        ok = conn.execute(
            "SELECT COUNT(*) FROM compression_runs_gifsicle WHERE status = 'ok'"
        ).fetchone()[0]
        stored = conn.execute("SELECT COUNT(*) FROM training_table").fetchone()[0]
        versions = conn.execute("SELECT DISTINCT dataset_version FROM training_table").fetchall()
        findings = conn.execute("SELECT COUNT(*) FROM outlier_report").fetchone()[0]
    assert stored == ok > 0
    assert len(versions) == 1
    exported = read_export(data_dir / "export" / "giflab_dataset.parquet")
    assert len(exported) == ok
    assert dataset_version(exported) == versions[0][0]  # the export is the stored table
    scaler = load_scaler(data_dir / "models" / "scaler.pkl")
    assert scaler.n_features_in_ > 25
    assert (data_dir / "reports" / "correlation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    meta = result.asset_materializations_for_node("training_table")[0].metadata
    assert meta["rows"].value == ok
    assert "data:image/png;base64," in (
        result.asset_materializations_for_node("correlation_report")[0].metadata["heatmap"].value
    )
    assert findings >= 0
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {
        "rows_match_metric_record_v1": True,
        "features_have_no_nan": True,
        "every_engine_has_rows": True,
    }


def test_scaler_file_is_untouched_when_nothing_changed(data_dir):
    instance = DagsterInstance.ephemeral()
    _materialize(data_dir, instance)
    path = data_dir / "models" / "scaler.pkl"
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    result = _materialize(data_dir, instance)
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    meta = result.asset_materializations_for_node("feature_scaler")[0].metadata
    assert meta["rewritten"].value is False
