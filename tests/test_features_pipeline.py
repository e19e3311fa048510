"""The gif_features asset through a real Dagster instance and the CLI: rows, CLIP, stats, check."""

import json
import math
import shutil
import sqlite3

import pytest
from dagster import AssetCheckSeverity, DagsterInstance, materialize

from giflab.features import CLIP_FEATURES, FEATURE_NAMES, FEATURES_VERSION, extract_features
from giflab.schemas import GifFeaturesV1
from giflab_assets.definitions import ASSETS, build_resources
from giflab_assets.runner import add_partitions
from resources import ClipResource
from tests.conftest import SAMPLES
from tests.test_cli import giflab

GIFS = [
    SAMPLES / "raylib__examples__textures__resources__scarfy_run.gif",
    SAMPLES / "Pillow__docs__handbook__animated_hopper.gif",
]
TINY = "giflab-tiny-clip"
TINY_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def _rows(db) -> dict[str, dict]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return {r["gif_sha"]: dict(r) for r in conn.execute("SELECT * FROM gif_features")}


def _registered(tmp_path):
    """A data dir whose registry knows GIFS, and a Dagster instance with their partitions."""
    from giflab.config import Settings
    from giflab.db import open_db
    from giflab.ingest import register_folder

    raw = tmp_path / "raw"
    raw.mkdir()
    for p in GIFS:
        shutil.copy(p, raw / p.name)
    settings = Settings(data_dir=tmp_path / "data")
    settings.ensure_dirs()
    with open_db(settings.db_path) as conn:
        report = register_folder(conn, raw, settings.bad_dir, limits=settings.limits())
    instance = DagsterInstance.ephemeral()
    add_partitions(instance, report.new_gifs)
    return settings, instance, report.new_gifs


def _materialize(settings, instance, keys, clip: ClipResource, workers: int = 1):
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    return materialize(
        ASSETS,
        instance=instance,
        resources=build_resources(settings.data_dir, clip=clip, workers=workers),
        selection=["gif_metadata", "gif_features"],
        tags={ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]},
    )


def test_cli_run_stores_features_and_stats_count_them(tmp_path):
    raw, data = tmp_path / "raw", tmp_path / "data"
    raw.mkdir()
    for p in GIFS:
        shutil.copy(p, raw / p.name)
    giflab("run", str(raw), "-j", "2", "--no-progress", data_dir=data)
    rows = _rows(data / "giflab.db")
    assert len(rows) == len(GIFS)
    for row in rows.values():
        assert GifFeaturesV1(**{k: v for k, v in row.items() if k != "schema_version"})
        for name in FEATURE_NAMES:
            if name in CLIP_FEATURES:
                assert row[name] is None  # no weights on this machine: NULL, never made up
            else:
                assert math.isfinite(row[name])
        assert row["clip_missing_reason"]
    stats = json.loads(giflab("stats", "--json", data_dir=data).stdout)
    assert stats["features"] == len(GIFS)
    assert stats["clip_missing"] == len(GIFS)

    # A database written before lzw_size_ratio existed: the next run recomputes the features
    # of every GIF (and only them), and they come back the same.
    with sqlite3.connect(data / "giflab.db") as conn:
        conn.execute('ALTER TABLE gif_features DROP COLUMN "lzw_size_ratio"')
    again = giflab("run", str(raw), "--no-progress", data_dir=data)
    assert f"{len(GIFS)} asset partitions to materialise" in again.stdout, again.stdout
    assert _rows(data / "giflab.db") == rows

    # Rows computed by an older FEATURES_VERSION (NULL: before versions were stored) are
    # recomputed the same way; rows of this version are left alone.
    assert {row["features_version"] for row in rows.values()} == {FEATURES_VERSION}
    with sqlite3.connect(data / "giflab.db") as conn:
        conn.execute("UPDATE gif_features SET features_version = NULL WHERE rowid = 1")
        conn.execute("UPDATE gif_features SET features_version = ? WHERE rowid = 2", (1,))
    again = giflab("run", str(raw), "--no-progress", data_dir=data)
    assert "2 asset partitions to materialise" in again.stdout, again.stdout
    assert _rows(data / "giflab.db") == rows


def test_features_match_the_domain_function_bit_for_bit(tmp_path):
    settings, instance, keys = _registered(tmp_path)
    result = _materialize(settings, instance, keys, ClipResource(enabled=False), workers=2)
    assert result.success
    rows = _rows(settings.db_path)
    by_name = {p.name: p for p in GIFS}
    with sqlite3.connect(settings.db_path) as conn:
        names = dict(conn.execute("SELECT gif_sha, orig_filename FROM gif_metadata"))
    for sha, row in rows.items():
        direct = extract_features(by_name[names[sha]])
        for name in FEATURE_NAMES:
            assert row[name] == direct[name], name


def test_missing_weights_warn_through_the_asset_check(tmp_path):
    settings, instance, keys = _registered(tmp_path)
    clip = ClipResource(weights_path=str(tmp_path / "absent.pt"))
    result = _materialize(settings, instance, keys, clip)
    assert result.success  # everything else goes on
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed
    assert check.severity == AssetCheckSeverity.WARN
    assert check.metadata["clip_missing"].value == len(keys)
    assert "absent.pt" in check.metadata["reasons"].value
    assert all("absent.pt" in r["clip_missing_reason"] for r in _rows(settings.db_path).values())


@pytest.fixture
def tiny_clip(tmp_path):
    """A tiny open_clip model config and its seeded random weights, saved as local files."""
    import open_clip
    import torch

    config = tmp_path / f"{TINY}.json"
    config.write_text(json.dumps(TINY_CONFIG))
    open_clip.add_model_config(config)
    torch.manual_seed(0)
    model = open_clip.create_model(TINY, pretrained=None)
    with torch.no_grad():
        model.logit_scale.fill_(math.log(100.0))
    weights = tmp_path / "tiny.pt"
    torch.save(model.state_dict(), weights)
    return ClipResource(model_name=TINY, weights_path=str(weights), model_config_path=str(config))


def test_tiny_clip_scores_through_spawned_workers(tmp_path, tiny_clip):
    settings, instance, keys = _registered(tmp_path)
    result = _materialize(settings, instance, keys, tiny_clip, workers=2)
    assert result.success
    (check,) = result.get_asset_check_evaluations()
    assert check.passed
    rows = _rows(settings.db_path)
    assert set(rows) == set(keys)
    for row in rows.values():
        assert row["clip_missing_reason"] is None
        assert row["clip_model"] == f"{TINY}/tiny.pt"
        assert sum(row[c] for c in CLIP_FEATURES) == pytest.approx(1.0, abs=1e-9)
    # Same values in-process (one worker) as in two spawned workers.
    again = _materialize(settings, instance, keys, tiny_clip, workers=1)
    assert again.success
    assert _rows(settings.db_path) == rows


@pytest.mark.parametrize(
    ("asset", "module", "task_fn"),
    [
        ("gif_metadata", "giflab_assets.ingest.assets", "metadata_task"),
        ("gif_features", "giflab_assets.features.assets", "features_task"),
    ],
)
def test_an_interrupted_step_keeps_its_finished_gifs_and_a_resume_does_only_the_rest(
    tmp_path, monkeypatch, asset, module, task_fn
):
    """Ctrl-C after the first GIF: its row is stored at once, the step fails at the end of that
    one task (not of the batch) with no partition marked materialised, and the next run
    computes only the other GIF; a later re-materialisation computes both again."""
    import importlib

    from dagster import AssetKey
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    from giflab.parallel import STOP

    assets = importlib.import_module(module)
    real = getattr(assets, task_fn)
    settings, instance, keys = _registered(tmp_path)
    done: list[str] = []

    def run(stop_after_first: bool) -> bool:
        def task(item, **kwargs):  # inline (one worker), so the test sees every task
            sha = item[0] if isinstance(item, tuple) else item.sha256
            done.append(sha)
            result = real(item, **kwargs)
            if stop_after_first:
                STOP.set()  # what the CLI's Ctrl-C handler does
            return result

        monkeypatch.setattr(assets, task_fn, task)
        try:
            return materialize(
                ASSETS,
                instance=instance,
                resources=build_resources(
                    settings.data_dir, clip=ClipResource(enabled=False), workers=1
                ),
                selection=["gif_metadata", "gif_features"] if asset == "gif_features" else [asset],
                tags={
                    ASSET_PARTITION_RANGE_START_TAG: keys[0],
                    ASSET_PARTITION_RANGE_END_TAG: keys[-1],
                },
                raise_on_error=False,
            ).success
        finally:
            STOP.clear()

    def stored() -> dict[str, tuple]:
        with sqlite3.connect(settings.db_path) as conn:
            return {r[0]: r for r in conn.execute(f"SELECT * FROM {asset}")}

    assert not run(stop_after_first=True)
    assert done == keys[:1]
    first = stored()
    assert list(first) == keys[:1]
    assert instance.get_materialized_partitions(AssetKey(asset)) == set()

    done.clear()
    assert run(stop_after_first=False)
    assert done == keys[1:]  # the saved GIF is not computed again
    rows = stored()
    assert set(rows) == set(keys) and rows[keys[0]] == first[keys[0]]
    assert instance.get_materialized_partitions(AssetKey(asset)) == set(keys)

    done.clear()
    assert run(stop_after_first=False)
    assert done == keys  # materialised partitions are recomputed when asked again
