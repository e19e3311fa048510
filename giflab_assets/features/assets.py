"""The features asset: 50 visual features per GIF, CLIP loaded once per worker."""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    BackfillPolicy,
    Output,
    ResourceParam,
    asset,
)

from giflab.db import open_db
from giflab.features.task import FeaturesTask, clip_plan, features_task, init_worker
from giflab.ingest import files_for_gif
from giflab.parallel import MapResult
from giflab.schemas import GifFeaturesV1
from giflab_assets.batch import run_per_gif, save_row, saved_rows, unsaved_keys
from giflab_assets.ingest.assets import gif_metadata
from giflab_assets.owners import OWNERS
from giflab_assets.partitions import gifs_partitions
from io_managers import SqliteIOManager
from resources import ClipResource, GifLabResource

CLIP_CHECK = "clip_scores_present"


def incomplete_features(db_path, keys: list[str]) -> set[str]:
    """GIFs among ``keys`` whose stored features are absent or out of date: no row, a classical
    feature missing (a NULL, or a column the table does not have yet: rows written before that
    feature existed) or the row computed by an older ``FEATURES_VERSION``."""
    from giflab.db import connect_readonly
    from giflab.features import CLASSICAL_FEATURES, FEATURES_VERSION

    absent = unsaved_keys(db_path, "gif_features", keys)
    if absent == set(keys):
        return absent
    conn = connect_readonly(db_path)
    try:
        have = {row[1] for row in conn.execute('PRAGMA table_info("gif_features")')}
        if not {*CLASSICAL_FEATURES, "features_version"} <= have:
            stale = {sha for (sha,) in conn.execute("SELECT gif_sha FROM gif_features")}
        else:
            nulls = " OR ".join(f'"{name}" IS NULL' for name in CLASSICAL_FEATURES)
            sql = (
                f"SELECT gif_sha FROM gif_features WHERE {nulls} "
                "OR features_version IS NULL OR features_version < ?"
            )
            stale = {sha for (sha,) in conn.execute(sql, (FEATURES_VERSION,))}
    finally:
        conn.close()
    return absent | (stale & set(keys))


@asset(
    owners=OWNERS,
    partitions_def=gifs_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    deps=[gif_metadata],
    io_manager_key="sqlite_io_manager",
    metadata={"partition_expr": "gif_sha"},
    group_name="features",
    kinds={"python", "pytorch", "sqlite"},
    check_specs=[
        AssetCheckSpec(
            CLIP_CHECK,
            asset="gif_features",
            description="The six CLIP content scores were computed (warns when weights are absent).",
        )
    ],
)
def gif_features(
    context: AssetExecutionContext,
    giflab: GifLabResource,
    clip: ClipResource,
    sqlite_io_manager: ResourceParam[SqliteIOManager],
):
    """Spatial, temporal, compressibility and CLIP content features of each GIF (docs/features.md)."""
    settings = giflab.settings()
    keys = list(context.partition_keys)
    limits = giflab.limits()
    saved = saved_rows(context, sqlite_io_manager, GifFeaturesV1, keys)
    for k in incomplete_features(settings.db_path, list(saved)):  # saved by older code
        del saved[k]
    tasks = []
    with open_db(settings.db_path) as conn:
        for k in keys:
            files = [p for p, _ in files_for_gif(conn, k) if p.is_file()]
            if files and k not in saved:  # a GIF quarantined since registration has no file
                tasks.append(FeaturesTask(k, str(files[0]), limits))
    done = MapResult()
    if tasks:  # no CLIP lookup when a resumed step has nothing left to compute
        done = run_per_gif(
            giflab,
            features_task,
            tasks,
            initializer=init_worker,
            initargs=clip_plan(clip.scorer_config()),
            save_each=lambda _, row: save_row(sqlite_io_manager, "gif_features", row),
        )
    for i, err in sorted(done.errors.items()):
        raise RuntimeError(f"{tasks[i].path}: features failed: {err}") from err
    rows = [*saved.values(), *(done.results[i] for i in sorted(done.results))]
    missing = [r for r in rows if r.clip_missing_reason is not None]
    reasons = sorted({r.clip_missing_reason for r in missing})
    yield Output(rows, metadata={"gifs": len(rows), "clip_missing": len(missing)})
    yield AssetCheckResult(
        check_name=CLIP_CHECK,
        passed=not missing,
        severity=AssetCheckSeverity.WARN,
        metadata={"clip_missing": len(missing), "reasons": "; ".join(reasons)},
        description=(
            f"CLIP scores NULL for {len(missing)} of {len(rows)} GIFs: {'; '.join(reasons)}"
            if missing
            else None
        ),
    )
