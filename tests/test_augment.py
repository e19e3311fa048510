"""Training-set augmentation: derived GIFs cut from train GIFs, kept out of every score."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from giflab.augment import (
    DERIVED_PLATFORM,
    augment_folder,
    derived_folder,
    derived_name,
    derived_source,
    plan_derivation,
)
from giflab.dataset import build_training_table, load_tables, table_summary
from giflab.dataset.splits import group_of, is_derived, split_of
from giflab.db import open_db
from giflab.ingest import register_folder, sha256_file
from giflab.prediction.config import TrainConfig
from giflab.prediction.crossval import cross_validate
from giflab.prediction.evaluate import baseline_ratios
from tests.conftest import good_corpus_gifs
from tests.test_cli import giflab
from tests.training_db import training_db

GIFSICLE = shutil.which("gifsicle")
needs_gifsicle = pytest.mark.skipif(GIFSICLE is None, reason="gifsicle not installed")
SHA_A, SHA_B = "a" * 64, "b" * 64


def _gifs_in(split: str, n: int, max_bytes: int = 300_000) -> list[Path]:
    """``n`` small corpus GIFs of ``split`` with at least two frames."""
    out = []
    for p in good_corpus_gifs():
        if p.stat().st_size > max_bytes or split_of(sha256_file(p)) != split:
            continue
        with Image.open(p) as im:
            if getattr(im, "n_frames", 1) >= 2 and min(im.size) >= 8:
                out.append(p)
        if len(out) == n:
            return out
    pytest.skip(f"the corpus has fewer than {n} small {split} GIFs")


def test_a_derivation_is_deterministic_and_keeps_half_of_each_dimension():
    plans = [plan_derivation(SHA_A, k, 200, 100, 30) for k in range(50)]
    assert plans == [plan_derivation(SHA_A, k, 200, 100, 30) for k in range(50)]
    assert plans != [plan_derivation(SHA_B, k, 200, 100, 30) for k in range(50)]
    for p in plans:
        assert 100 <= p.width <= 200 and 50 <= p.height <= 100
        assert 0 <= p.x <= 200 - p.width and 0 <= p.y <= 100 - p.height
        assert 15 <= p.n_frames <= 30 and 0 <= p.first_frame <= 30 - p.n_frames
        assert p.scale is None or 0.5 <= p.scale <= 0.9
    assert {p.optimize for p in plans} == {("-O1",), ("-O2",), ("-O3",)}
    assert any(p.scale for p in plans) and any(p.scale is None for p in plans)
    one = plan_derivation(SHA_A, 0, 1, 1, 1)
    assert (one.width, one.height, one.n_frames, one.scale) == (1, 1, 1, None)
    with pytest.raises(ValueError, match="0x5"):
        plan_derivation(SHA_A, 0, 0, 5, 3)


def test_derived_names_and_sources():
    assert derived_name(2, "café ☕ loop.gif") == "d2-caf_loop.gif"
    assert derived_name(0, "...gif") == "d0-gif.gif"
    path = f"{DERIVED_PLATFORM}/{SHA_A}/d0-x.gif"
    meta = {"orig_filenames": ["d0-x.gif"], "rel_paths": [path]}
    assert derived_source(json.dumps(meta)) == SHA_A
    assert derived_source(meta | {"rel_paths": [path, f"{DERIVED_PLATFORM}/{SHA_A}/d1-x.gif"]})
    # The same bytes also found as an original, or under two sources: not derived.
    assert derived_source(meta | {"rel_paths": [path, "anime/x.gif"]}) is None
    assert (
        derived_source(meta | {"rel_paths": [path, f"{DERIVED_PLATFORM}/{SHA_B}/d0.gif"]}) is None
    )
    assert derived_source(meta | {"rel_paths": ["x.gif"]}) is None
    assert derived_source(meta | {"rel_paths": [f"{DERIVED_PLATFORM}/nothex/d0.gif"]}) is None
    assert derived_source(meta | {"rel_paths": []}) is None


@needs_gifsicle
def test_augment_folder_cuts_train_gifs_only_and_keeps_what_exists(tmp_path):
    *train, changed = _gifs_in("train", 3)
    test = _gifs_in("test", 1)
    raw, root = tmp_path / "raw", tmp_path / "augmented"
    raw.mkdir()
    for p in [*train, changed, *test]:
        shutil.copy(p, raw / p.name)
    with open_db(tmp_path / "giflab.db") as conn:
        register_folder(conn, raw, tmp_path / "bad")
        # Replaced after it was registered: reported by name, nothing derived from it.
        (raw / changed.name).write_bytes(b"GIF89a" + b"\0" * 20)
        first = augment_folder(conn, root, 3, GIFSICLE, workers=2)
        assert first.sources == 3
        assert first.written == 6 and first.existing == 0
        assert [(Path(s).name, r) for s, r in first.failed] == [
            (changed.name, "changed since it was registered (run giflab run again to register it)")
        ]
        again = augment_folder(conn, root, 3, GIFSICLE, workers=1)
        assert (again.written, again.existing) == (0, 6)
    assert not derived_folder(root, sha256_file(changed)).exists()

    for src in train:
        sha = sha256_file(src)
        files = sorted(derived_folder(root, sha).glob("*.gif"))
        assert [f.name for f in files] == [derived_name(k, src.name) for k in range(3)]
        with Image.open(src) as im:
            width, height, frames = *im.size, im.n_frames
        for k, f in enumerate(files):
            plan = plan_derivation(sha, k, width, height, frames)
            with Image.open(f) as out:
                w, h = out.size
                assert out.n_frames <= plan.n_frames  # -O2/-O3 fold identical frames
            scale = plan.scale or 1.0
            assert abs(w - plan.width * scale) <= 1 and abs(h - plan.height * scale) <= 1
    assert not derived_folder(root, sha256_file(test[0])).exists()
    assert not list(root.rglob(".*"))  # no temporary files left behind


def _derive_in_table(metadata, source_sha: str, victim_sha: str):
    """``metadata`` with ``victim_sha`` registered as if derived from ``source_sha``."""
    metadata = metadata.copy()
    i = metadata.index[metadata["gif_sha"] == victim_sha][0]
    metadata.at[i, "rel_paths"] = [f"{DERIVED_PLATFORM}/{source_sha}/d0-x.gif"]
    metadata.at[i, "orig_filenames"] = ["d0-x.gif"]
    return metadata


def test_a_derived_gif_takes_its_sources_split_and_stays_out_of_baseline_and_scores():
    metadata, features, runs = load_tables(training_db())
    table = build_training_table(metadata, features, runs)
    splits = table.drop_duplicates("gif_sha").set_index("gif_sha")["split"]
    test_sha = splits[splits == "test"].index[0]
    train_shas = list(splits[splits == "train"].index)
    victim, source = train_shas[0], test_sha
    moved = build_training_table(_derive_in_table(metadata, source, victim), features, runs)
    rows = moved[moved["gif_sha"] == victim]
    assert set(rows["split"]) == {"test"} and set(group_of(rows)) == {source}
    assert set(rows["source_platform"]) == {DERIVED_PLATFORM}

    # A derived train GIF: trained on, but the baseline is the originals' alone.
    derived = build_training_table(
        _derive_in_table(metadata, train_shas[1], victim), features, runs
    )
    assert is_derived(derived).sum() == len(derived[derived["gif_sha"] == victim])
    assert table_summary(derived)["derived_gifs"] == 1
    originals_only = derived[~is_derived(derived)]
    assert baseline_ratios(derived).equals(baseline_ratios(originals_only))
    assert not baseline_ratios(derived).equals(baseline_ratios(table))

    # Cross-validation: the derived GIF is never scored, and sits in its source's fold.
    fast = TrainConfig(formulation="joint", fallback_n_estimators=40, early_stopping_rounds=None)
    result = cross_validate(derived, fast, folds=3)
    assert victim not in set(result.predictions["gif_sha"])
    assert set(result.predictions["gif_sha"]) == set(derived["gif_sha"]) - {victim}
    assert np.isfinite(result.summary["model_median_ape"])


@needs_gifsicle
def test_run_augment_sweeps_derived_gifs_as_training_gifs(tmp_path):
    train, test = _gifs_in("train", 2, max_bytes=60_000), _gifs_in("test", 1, max_bytes=60_000)
    raw, data = tmp_path / "raw", tmp_path / "data"
    raw.mkdir()
    for p in [*train, *test]:
        shutil.copy(p, raw / p.name)
    dry = giflab("run", str(raw), "--augment", "2", "--dry-run", "--no-progress", data_dir=data)
    assert "would cut 2 GIFs from each train GIF" in dry.stdout
    assert not (data / "augmented").exists()

    first = giflab("run", str(raw), "--augment", "2", "-j", "2", "--no-progress", data_dir=data)
    assert (
        "augment: 2 train GIFs: 4 derived GIFs written, 0 already there, 0 failed" in first.stdout
    )
    with sqlite3.connect(data / "giflab.db") as conn:
        roots = dict(conn.execute("SELECT raw_root, COUNT(*) FROM gif_files GROUP BY raw_root"))
    assert roots == {str(raw.resolve()): 3, str((data / "augmented").resolve()): 4}
    table = build_training_table(*load_tables(data / "giflab.db"))
    gifs = table.drop_duplicates("gif_sha")
    derived = gifs[is_derived(gifs)]
    assert len(gifs) == 7 and len(derived) == 4
    assert set(derived["split"]) == {"train"}
    assert set(group_of(derived)) == {sha256_file(p) for p in train}

    stats = json.loads(giflab("stats", "--json", data_dir=data).stdout)
    assert (stats["gifs"], stats["derived_gifs"]) == (7, 4)

    second = giflab("run", str(raw), "--augment", "2", "--no-progress", data_dir=data)
    assert "4 derived GIFs written" not in second.stdout
    assert "0 derived GIFs written, 4 already there" in second.stdout
    assert "0 asset partitions to materialise" in second.stdout
