"""``giflab train``, ``export`` and ``predict`` as users run them: subprocesses on a real database,
a real Dagster instance and a real MLflow store under the data directory."""

import json
import shutil
import sqlite3

import pytest

from tests.conftest import SAMPLES
from tests.test_cli import giflab
from tests.training_db import training_db


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    data = tmp_path_factory.mktemp("trained")
    shutil.copy(training_db(), data / "giflab.db")
    proc = giflab("train", data_dir=data)
    return data, proc


def test_train_writes_models_reports_and_registers_in_mlflow(trained):
    data, proc = trained
    assert "training table:" in proc.stdout and "derived by --augment" not in proc.stdout
    assert "train GIFs; `giflab run --augment 4` cuts 4 more from each" in proc.stdout
    assert "gifsicle" in proc.stdout
    card = json.loads((data / "models" / "model_card.json").read_text())
    assert set(card["engines"]) == {"gifsicle"}
    assert card["facts"]["clip_models"] == []  # the test database has no CLIP scores
    for name in card["files"]:
        assert (data / "models" / name).is_file()
    for png in ("correlation", "model_curves", "model_error_by_level"):
        assert (data / "reports" / f"{png}.png").read_bytes()[:4] == b"\x89PNG"
    with sqlite3.connect(data / "mlflow.db") as conn:
        aliases = dict(conn.execute("SELECT alias, version FROM registered_model_aliases"))
    assert aliases == {"candidate": 1, "champion": 1}
    assert (data / "mlruns").is_dir() and not (data.parent / "mlruns").exists()
    with sqlite3.connect(data / "giflab.db") as conn:
        levels = conn.execute("SELECT COUNT(*) FROM model_evaluation").fetchone()[0]
    assert levels > 0


def test_train_again_adds_a_candidate_and_keeps_the_champion(trained, tmp_path):
    data, _ = trained
    copy = tmp_path / "again"
    shutil.copytree(data, copy)
    giflab("train", data_dir=copy)
    with sqlite3.connect(copy / "mlflow.db") as conn:
        aliases = dict(conn.execute("SELECT alias, version FROM registered_model_aliases"))
    assert aliases == {"candidate": 2, "champion": 1}  # same data: not better, not promoted


def test_export_writes_the_dataset_and_verified_model_copies(trained, tmp_path):
    data, _ = trained
    out = tmp_path / "models_out"
    proc = giflab("export", "--out", str(out), data_dir=data)
    assert "verified" in proc.stdout
    assert (data / "export" / "giflab_dataset.parquet").is_file()
    header = (data / "export" / "giflab_dataset.csv").read_text().splitlines()[0]
    assert header.startswith("gif_sha,orig_filename,engine,lossy,frame_keep_ratio")
    assert {p.name for p in out.iterdir()} >= {"gifsicle.pkl", "scaler.pkl", "model_card.json"}


def test_predict_prints_a_monotone_curve_and_a_pick(trained):
    data, _ = trained
    gif = sorted(SAMPLES.glob("*.gif"))[0]
    proc = giflab("predict", str(gif), "--engine", "gifsicle", "--json", data_dir=data)
    doc = json.loads(proc.stdout)
    assert doc["engine"] == "gifsicle"
    curve = doc["curve"]
    card = json.loads((data / "models" / "model_card.json").read_text())
    assert {p["lossy"] for p in curve} == set(card["lossy_levels"])  # the levels it learnt
    for colors in {p["colors"] for p in curve}:
        for keep in {p["frame_keep"] for p in curve}:
            sizes = [
                p["kilobytes"]
                for p in sorted(curve, key=lambda p: p["lossy"])
                if p["colors"] == colors and p["frame_keep"] == keep
            ]
            assert sizes == sorted(sizes, reverse=True)
    target = sorted(p["kilobytes"] for p in curve)[len(curve) // 2]
    proc = giflab(
        "predict",
        str(gif),
        "--engine",
        "gifsicle",
        "--target-kb",
        str(target),
        "--json",
        data_dir=data,
    )
    pick = json.loads(proc.stdout)["pick"]
    assert pick is not None and pick["kilobytes"] <= target


def test_predict_refuses_a_tampered_model_file(trained, tmp_path):
    data, _ = trained
    models = tmp_path / "models"
    shutil.copytree(data / "models", models)
    raw = bytearray((models / "gifsicle.pkl").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (models / "gifsicle.pkl").write_bytes(bytes(raw))
    gif = sorted(SAMPLES.glob("*.gif"))[0]
    proc = giflab("predict", str(gif), "--models", str(models), data_dir=data, check=False)
    assert proc.returncode == 1
    assert "gifsicle.pkl" in proc.stderr and "sha256" in proc.stderr
    assert proc.stderr.count("\n") == 1  # one line for people
