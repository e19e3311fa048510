"""The feature scaler: train GIFs only, one row per GIF, NaN-tolerant, rewritten only on change."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import warnings

import numpy as np
import pytest

from giflab.dataset import (
    build_training_table,
    fit_scaler,
    load_scaler,
    load_tables,
    save_scaler,
    scaler_fingerprint,
    split_of,
)
from giflab.dataset.columns import GIF_FEATURES, ORIG_COLUMNS
from giflab.dataset.scaler import scaler_bytes
from tests.conftest import REPO
from tests.dataset_db import dataset_db


@pytest.fixture(scope="module")
def db():
    return dataset_db()


@pytest.fixture(scope="module")
def table(db):
    return build_training_table(*load_tables(db))


def _train_matrix_from_sql(db) -> np.ndarray:
    """Per-GIF feature rows of the train GIFs, read with plain SQL (independent of the code)."""
    to_orig = {v: k for k, v in ORIG_COLUMNS.items()}
    columns = ", ".join(
        f'{"m" if n in to_orig else "f"}."{to_orig.get(n, n)}"' for n in GIF_FEATURES
    )
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            f"SELECT m.gif_sha, {columns} FROM gif_metadata m JOIN gif_features f USING (gif_sha)"
        ).fetchall()
    train = [r[1:] for r in rows if split_of(r[0]) == "train"]
    return np.array([[np.nan if v is None else float(v) for v in r] for r in train])


def test_fit_equals_a_manual_fit_on_train_gifs_only(db, table):
    scaler = fit_scaler(table)
    manual = _train_matrix_from_sql(db)
    n_train = table.loc[table["split"] == "train", "gif_sha"].nunique()
    assert len(manual) == n_train < table["gif_sha"].nunique()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN CLIP columns
        mean, var = np.nanmean(manual, axis=0), np.nanvar(manual, axis=0)
    np.testing.assert_allclose(scaler.mean_, mean, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(scaler.var_, var, rtol=1e-12, atol=1e-300, equal_nan=True)
    # One sample per GIF, not per render.
    assert np.nanmax(scaler.n_samples_seen_) == n_train
    assert list(scaler.feature_names_in_) == list(GIF_FEATURES)


def test_nan_clip_scores_are_tolerated(table):
    some_clip = table.copy()
    train_sha = sorted(set(table.loc[table["split"] == "train", "gif_sha"]))[0]
    some_clip.loc[some_clip["gif_sha"] == train_sha, "clip_photography"] = 0.3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scaler = fit_scaler(some_clip)
    i = list(GIF_FEATURES).index("clip_photography")
    j = list(GIF_FEATURES).index("clip_vector_art")
    assert scaler.mean_[i] == pytest.approx(0.3)
    assert scaler.n_samples_seen_[i] == 1
    assert np.isnan(scaler.mean_[j])
    out = scaler.transform(some_clip[list(GIF_FEATURES)].astype("float64"))
    assert np.isnan(out[:, j]).all()
    assert np.isfinite(out[:, list(GIF_FEATURES).index("entropy")]).all()


def _with_feature_changed(db, split: str, feature: str = "edge_density"):
    metadata, features, runs = load_tables(db)
    sha = sorted(s for s in features["gif_sha"] if split_of(s) == split)[0]
    features.loc[features["gif_sha"] == sha, feature] = (
        features.loc[features["gif_sha"] == sha, feature] * 0.5 + 0.01
    )
    return build_training_table(metadata, features, runs)


def test_scaler_file_is_rewritten_only_when_train_gifs_change(db, table, tmp_path):
    path = tmp_path / "scaler.pkl"
    first = save_scaler(fit_scaler(table), path, scaler_fingerprint(table))
    assert first.rewritten and path.read_bytes() and first.sha256 == _sha(path)
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["fingerprint"] == first.fingerprint and sidecar["sha256"] == first.sha256
    stamp = path.stat().st_mtime_ns

    # Same train GIFs, refitted from shuffled rows: untouched.
    shuffled = table.sample(frac=1, random_state=7)
    again = save_scaler(fit_scaler(shuffled), path, scaler_fingerprint(shuffled))
    assert not again.rewritten and again.sha256 == first.sha256
    assert path.stat().st_mtime_ns == stamp

    # A validation GIF changes: the scaler does not see it, the file stays byte-identical.
    val_changed = _with_feature_changed(db, "val")
    assert not val_changed.equals(table)
    assert scaler_fingerprint(val_changed) == first.fingerprint
    kept = save_scaler(fit_scaler(val_changed), path, scaler_fingerprint(val_changed))
    assert not kept.rewritten and _sha(path) == first.sha256

    # A train GIF changes: new fingerprint, new bytes, new statistics.
    train_changed = _with_feature_changed(db, "train")
    scaler = fit_scaler(train_changed)
    new = save_scaler(scaler, path, scaler_fingerprint(train_changed))
    assert new.rewritten and new.fingerprint != first.fingerprint
    assert _sha(path) == new.sha256 != first.sha256
    np.testing.assert_array_equal(load_scaler(path).mean_, scaler.mean_)


def test_a_missing_sidecar_or_changed_file_means_a_rewrite(table, tmp_path):
    path = tmp_path / "scaler.pkl"
    scaler, fingerprint = fit_scaler(table), scaler_fingerprint(table)
    save_scaler(scaler, path, fingerprint)
    path.with_suffix(".json").unlink()
    assert save_scaler(scaler, path, fingerprint).rewritten
    path.write_bytes(b"tampered")
    assert save_scaler(scaler, path, fingerprint).rewritten
    assert path.read_bytes() == scaler_bytes(scaler)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_pickle_bytes_are_deterministic_across_fits_and_processes(db, table):
    in_process = hashlib.sha256(scaler_bytes(fit_scaler(table))).hexdigest()
    shuffled = table.sample(frac=1, random_state=11)
    assert hashlib.sha256(scaler_bytes(fit_scaler(shuffled))).hexdigest() == in_process
    code = (
        "import hashlib, sys\n"
        "from giflab.dataset import build_training_table, fit_scaler, load_tables\n"
        "from giflab.dataset.scaler import scaler_bytes\n"
        "t = build_training_table(*load_tables(sys.argv[1]))\n"
        "print(hashlib.sha256(scaler_bytes(fit_scaler(t))).hexdigest())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": "123"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(db)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    assert out.stdout.strip() == in_process
