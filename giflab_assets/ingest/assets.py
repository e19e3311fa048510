"""Ingest assets: per-GIF metadata, measured on a worker pool inside one step per batch."""

from functools import partial

from dagster import AssetExecutionContext, BackfillPolicy, ResourceParam, asset

from giflab.db import open_db
from giflab.errors import BadGifError
from giflab.ingest import files_for_gif, quarantine_gif
from giflab.meta import metadata_task
from giflab.schemas import GifMetadataV1
from giflab_assets.batch import run_per_gif, save_row, saved_rows
from giflab_assets.owners import OWNERS
from giflab_assets.partitions import gifs_partitions
from io_managers import SqliteIOManager
from resources import GifLabResource

QUARANTINED_KEY = "quarantined"


@asset(
    owners=OWNERS,
    partitions_def=gifs_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    io_manager_key="sqlite_io_manager",
    metadata={"partition_expr": "gif_sha"},
    group_name="ingest",
    kinds={"python", "sqlite"},
)
def gif_metadata(
    context: AssetExecutionContext,
    giflab: GifLabResource,
    sqlite_io_manager: ResourceParam[SqliteIOManager],
) -> list[GifMetadataV1]:
    """Size, frames, timing, colours used, loop and transparency of each GIF; all its names."""
    settings = giflab.settings()
    keys = list(context.partition_keys)
    with open_db(settings.db_path) as conn:
        files = {k: [(str(p), rel) for p, rel in files_for_gif(conn, k)] for k in keys}
    saved = {  # rows an interrupted step stored, unless the GIF got another name since
        k: row
        for k, row in saved_rows(context, sqlite_io_manager, GifMetadataV1, keys).items()
        if sorted(row.rel_paths) == sorted(rel for _, rel in files[k])
    }
    items = [(k, files[k]) for k in keys if k not in saved]
    done = run_per_gif(
        giflab,
        partial(metadata_task, limits=giflab.limits()),
        items,
        save_each=lambda _, row: save_row(sqlite_io_manager, "gif_metadata", row),
    )
    rows = [*saved.values(), *(done.results[i] for i in sorted(done.results))]
    quarantined = []
    for i, err in sorted(done.errors.items()):
        if not isinstance(err, BadGifError):
            raise err
        sha = items[i][0]
        with open_db(settings.db_path) as conn:
            quarantine_gif(conn, sha, err.kind, err.reason, settings.bad_dir)
        context.log.error(f"quarantined {err}")
        quarantined.append(sha)
    context.add_output_metadata({"gifs": len(rows), QUARANTINED_KEY: quarantined})
    return rows
