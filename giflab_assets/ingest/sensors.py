"""The raw-folder sensor: registers new GIFs, adds their partitions, requests one run per batch
that materialises their metadata, features and the sweep of every available engine."""

from collections.abc import Sequence

from dagster import (
    AssetKey,
    AssetSelection,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from giflab.db import open_db
from giflab.ingest import register_folder
from giflab_assets.compression.assets import asset_name
from giflab_assets.partitions import gifs_partitions
from resources import EnginesResource, GifLabResource

# New files validated per tick: keeps a tick well under Dagster's sensor timeout on big drops.
MAX_FILES_PER_TICK = 500
# Partitions per requested run: one step handles the batch on its own worker pool.
RUN_BATCH = 200


def unpartitioned_gifs(db_path, existing: set[str]) -> list[str]:
    """Registered GIF hashes (in registration order) that have no partition yet."""
    with open_db(db_path) as conn:
        rows = conn.execute(
            "SELECT sha256 FROM gif_files GROUP BY sha256 ORDER BY MIN(registered_at), sha256"
        ).fetchall()
    return [r[0] for r in rows if r[0] not in existing]


def per_gif_assets(engines: EnginesResource) -> list[AssetKey]:
    """What a new GIF needs: metadata, features, and the sweep of each engine that is installed
    (an unavailable one, e.g. Animately without its binary, would only fail the run)."""
    names = ["gif_metadata", "gif_features"]
    names += [asset_name(e) for e in engines.engines if engines.status(e).ok]
    return [AssetKey(n) for n in names]


def batch_run_requests(
    keys: Sequence[str], assets: Sequence[AssetKey] | None = None, batch: int = RUN_BATCH
) -> list[RunRequest]:
    """One run request per ``batch`` consecutive new partitions, as a partition-range run of
    ``assets`` (default: the sensor's whole selection)."""
    requests = []
    for start in range(0, len(keys), batch):
        chunk = keys[start : start + batch]
        requests.append(
            RunRequest(
                run_key=f"gifs:{chunk[0]}:{chunk[-1]}",
                asset_selection=list(assets) if assets is not None else None,
                tags={
                    ASSET_PARTITION_RANGE_START_TAG: chunk[0],
                    ASSET_PARTITION_RANGE_END_TAG: chunk[-1],
                },
            )
        )
    return requests


@sensor(
    name="raw_gifs_sensor",
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    asset_selection=AssetSelection.groups("ingest", "features", "compression", "compression_extra"),
    description="Watches the raw folder: new GIFs get a partition and a run; bad files are quarantined.",
)
def raw_gifs_sensor(
    context: SensorEvaluationContext, giflab: GifLabResource, engines: EnginesResource
):
    """Register new files under the raw folder and request runs for their partitions."""
    settings = giflab.settings()
    if not settings.raw.is_dir():
        return SkipReason(f"raw folder {settings.raw} does not exist")
    with open_db(settings.db_path) as conn:
        report = register_folder(
            conn,
            settings.raw,
            settings.bad_dir,
            limits=settings.limits(),
            max_files=MAX_FILES_PER_TICK,
        )
    for path, kind, reason, dest in report.quarantined:
        context.log.warning(f"quarantined {path}: {kind}: {reason} -> {dest}")
    existing = set(context.instance.get_dynamic_partitions(gifs_partitions.name))
    new = unpartitioned_gifs(settings.db_path, existing)
    if not new:
        return SkipReason(f"no new GIFs ({report.files_seen} files seen)")
    return SensorResult(
        run_requests=batch_run_requests(new, per_gif_assets(engines)),
        dynamic_partitions_requests=[gifs_partitions.build_add_request(new)],
    )
