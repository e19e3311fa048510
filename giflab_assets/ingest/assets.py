"""Ingest assets: per-GIF metadata, measured on a worker pool inside one step per batch."""

from functools import partial

from dagster import AssetExecutionContext, BackfillPolicy, asset

from giflab.db import open_db
from giflab.errors import BadGifError
from giflab.ingest import files_for_gif, quarantine_gif
from giflab.meta import metadata_task
from giflab.schemas import GifMetadataV1
from giflab_assets.batch import run_per_gif
from giflab_assets.owners import OWNERS
from giflab_assets.partitions import gifs_partitions
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
def gif_metadata(context: AssetExecutionContext, giflab: GifLabResource) -> list[GifMetadataV1]:
    """Size, frames, timing, colours used, loop and transparency of each GIF; all its names."""
    settings = giflab.settings()
    keys = list(context.partition_keys)
    with open_db(settings.db_path) as conn:
        items = [(k, [(str(p), rel) for p, rel in files_for_gif(conn, k)]) for k in keys]
    done = run_per_gif(giflab, partial(metadata_task, limits=giflab.limits()), items)
    rows: list[GifMetadataV1] = [done.results[i] for i in sorted(done.results)]
    quarantined = []
    for i, err in sorted(done.errors.items()):
        if not isinstance(err, BadGifError):
            raise err
        with open_db(settings.db_path) as conn:
            quarantine_gif(conn, keys[i], err.kind, err.reason, settings.bad_dir)
        context.log.error(f"quarantined {err}")
        quarantined.append(keys[i])
    context.add_output_metadata({"gifs": len(rows), QUARANTINED_KEY: quarantined})
    return rows
